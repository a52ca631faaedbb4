# almanac: PGXS build, plus the two set-up commands of the README.
#
#   make demo   install missing Debian packages, build, start a local instance
#               inside the checkout with almanac preloaded, load a sample, query it
#   make test   install missing Debian packages, build, run pg_regress,
#               isolation and TAP suites against temporary instances
#   make bench  install missing Debian packages (gnuplot too), build, run the
#               design's six operations on both routes (bench/ops/run.sh;
#               BENCH_SCALE=small|default|large) and write bench/results/
#
# Plain `make` / `make install` are the usual PGXS targets (PG_CONFIG=... works).

EXTENSION   = almanac
EXTVERSION  = 0.1.0
MODULE_big  = almanac
OBJS        = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c src/*/*.c)))
DATA_built  = almanac--$(EXTVERSION).sql
# the coordinator, a second extension for a database in front of almanac
# nodes (docs/scale-out.md); installed beside almanac, never into a node
DATA        = coordinator/almanac_coordinator.control coordinator/almanac_coordinator--0.1.0.sql
# the install script is assembled from the parts in src/sql, in file-name order
SQL_PARTS   = $(sort $(wildcard src/sql/*.sql))

# pg_regress suites: inputs in sql/, outputs in expected/
REGRESS     = extension schema constraints keys fdw_options fdw fdw_pushdown fdw_import ddl value_forgery fdw_bulk maintenance admin ingest ingest_reorg ingest_errors row_cache reader_mmap idle_flush settings batch_send
# issue 13, isolation: privileges over key spaces
REGRESS     += privileges statements
# found by test/t/043_differential_fuzz.pl
REGRESS     += insert_then_update insert_then_update_sends
# issue 14, router: mirrors and routed lookups
REGRESS     += router mirror mirror_triggers mirror_backfill_reads
# isolation specs: test/isolation/specs/*.spec, outputs in test/isolation/expected/
ISOLATION_SPECS = $(basename $(notdir $(sort $(wildcard test/isolation/specs/*.spec))))

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS   = -Wall -Wmissing-prototypes -Wpointer-arith -Wendif-labels -Wformat-security
SHLIB_LINK  = -lrocksdb

EXTRA_CLEAN = $(DATA_built) sql-parts.list

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
else
all:
	@echo "pg_config not found: run 'make demo' or 'make test' (they install" >&2
	@echo "postgresql-server-dev-15), or pass PG_CONFIG=/path/to/pg_config" >&2
	@exit 1
endif

# PGXS tracks no header dependencies: rebuild every object when a header changes
$(OBJS): $(wildcard src/*.h src/*/*.h)

# sql-parts.list names the parts: rewritten only when the set changes, so that
# a part removed or renamed rebuilds the script too (a dependency on the
# parts' times alone misses a removal)
sql-parts.list: FORCE
	@echo '$(SQL_PARTS)' | cmp -s - $@ || echo '$(SQL_PARTS)' > $@

$(DATA_built): $(SQL_PARTS) sql-parts.list
	cat $(SQL_PARTS) > $@

.PHONY: FORCE

.PHONY: deps deps-bench demo demo-stop test bench

# Install whatever Debian packages are missing (root: apt-get; otherwise say what to run).
deps:
	@bash test/scripts/deps.sh

demo: deps
	@bash test/scripts/demo.sh start

demo-stop:
	@bash test/scripts/demo.sh stop

test: deps
	@REGRESS="$(REGRESS)" ISOLATION_SPECS="$(ISOLATION_SPECS)" bash test/scripts/run-tests.sh

deps-bench:
	@bash test/scripts/deps.sh bench

# `make bench BENCH_SCALE=small` as well as `BENCH_SCALE=small make bench`
BENCH_SCALE ?= default
bench: deps-bench
	@BENCH_SCALE="$(BENCH_SCALE)" bash bench/ops/run.sh
