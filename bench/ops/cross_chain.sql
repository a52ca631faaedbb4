-- Cross-Chain Message Tracking: a message followed from its source
-- transaction (named by its hash) to its destination transaction and status
\set m random(0, :messages - 1)
\set c :m % :chains + 1
\set i 1000000000 + (:m / :chains) * :stride
SELECT m.protocol, m.message_key, m.status, s.chain_id AS source_chain, s.block_number AS source_block,
	   s.tx_hash AS source_tx, m.sent_at, m.destination_chain_id, d.block_number AS destination_block,
	   d.tx_hash AS destination_tx, d.status AS destination_tx_status, m.delivered_at,
	   extract(epoch FROM m.delivered_at - m.sent_at) AS seconds_in_flight, m.payload
  FROM almanac.transactions s
  JOIN almanac.cross_chain_messages m ON m.source_transaction_id = s.id
  LEFT JOIN almanac.transactions d ON d.id = m.destination_transaction_id
 WHERE s.chain_id = 'chain' || :c AND s.tx_hash = '0x000' || :c || repeat(:i::text, 6);
