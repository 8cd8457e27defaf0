package bolt

import "go.etcd.io/bbolt"

// Stats returns bbolt's counters for metrics: free and pending pages,
// free bytes, open read transactions, transactions started, and the
// size of the data file.
func (db *DB) Stats() map[string]float64 {
	st := db.db.Stats()
	out := map[string]float64{
		"free_pages":        float64(st.FreePageN),
		"pending_pages":     float64(st.PendingPageN),
		"free_alloc_bytes":  float64(st.FreeAlloc),
		"freelist_bytes":    float64(st.FreelistInuse),
		"open_read_txs":     float64(st.OpenTxN),
		"read_txs_total":    float64(st.TxN),
		"page_allocs_total": float64(st.TxStats.GetPageCount()),
		"writes_total":      float64(st.TxStats.GetWrite()),
		"write_seconds":     st.TxStats.GetWriteTime().Seconds(),
		"rebalance_total":   float64(st.TxStats.GetRebalance()),
		"spill_seconds":     st.TxStats.GetSpillTime().Seconds(),
	}
	_ = db.db.View(func(tx *bbolt.Tx) error {
		out["size_bytes"] = float64(tx.Size())
		return nil
	})
	return out
}
