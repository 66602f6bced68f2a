package pg

// applyChange stub until the users helper's version lands (TODO: remove).
func (db *DB) applyChange(kind, key string) {}
