package admin

import (
	"github.com/chatctl/chatctl/configs"
)

// Connect returns the Admin for cfg: the store itself when it is free.
func Connect(cfg *configs.Config) (Admin, error) {
	return Open(cfg)
}
