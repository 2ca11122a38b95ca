package source

import "errors"

// OpenNetlink reads the module's netlink transport (module parameter
// send_type=1).
func OpenNetlink() (Source, error) {
	return nil, errors.New("source.kind = \"netlink\": not supported by this agent build yet; load the module with send_type=2 (shared memory)")
}
