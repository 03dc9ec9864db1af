-- The largest packet the server takes from this session, in bytes (db/packets.py sizes each batch of
-- a parameter array by it). A session's value is the global one when it connected, and read-only.
SELECT @@max_allowed_packet
