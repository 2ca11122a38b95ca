// SPDX-License-Identifier: GPL-2.0

package decode

import "strconv"

// The event table: every record type that is an event and every field id,
// with the names the output formats give them.  The decoder, the encoder
// (smith and ECS) and the soak reconciler read names from here and nowhere
// else; docs/EVENTS.md documents the same names.

// EventInfo describes one event type.
type EventInfo struct {
	Type uint16 // record type: TypeExecve, ...
	// Name is the system call: the ECS event.action.
	Name string
	// DataType is the smith format's data_type and the ECS event.code:
	// Type in decimal.
	DataType string
	// ECSCategory and ECSType are ECS event.category and event.type.
	ECSCategory string
	ECSType     []string
	// Fields are the ids the module writes for it besides FieldExe and
	// FieldNodename, which every event has (CommonFields).
	Fields []uint16
}

// Events lists the event types.
var Events = [...]EventInfo{
	{Type: TypeExecve, Name: "execve", ECSCategory: "process", ECSType: []string{"start"},
		Fields: []uint16{FieldFilename, FieldArgv, FieldCwd, FieldStdin, FieldStdout, FieldTTY, FieldExeID}},
	{Type: TypeConnect, Name: "connect", ECSCategory: "network", ECSType: []string{"connection", "start"},
		Fields: []uint16{FieldConnectID}},
	{Type: TypeInitModule, Name: "init_module", ECSCategory: "driver", ECSType: []string{"start"},
		Fields: []uint16{FieldModName, FieldModParams}},
	{Type: TypeFinitModule, Name: "finit_module", ECSCategory: "driver", ECSType: []string{"start"},
		Fields: []uint16{FieldModName, FieldModPath, FieldModParams}},
}

// CommonFields are the field ids of every event.
var CommonFields = []uint16{FieldExe, FieldNodename}

// DataTypeLost is the data_type of the event a "lost N" record becomes.
var DataTypeLost = strconv.Itoa(int(TypeLost))

func init() {
	for i := range Events {
		Events[i].DataType = strconv.Itoa(int(Events[i].Type))
	}
}

// EventByType returns the table's entry for a record type, nil when the
// type is not an event this decoder knows.
func EventByType(t uint16) *EventInfo {
	for i := range Events {
		if Events[i].Type == t {
			return &Events[i]
		}
	}
	return nil
}

// FieldInfo describes one field id.
type FieldInfo struct {
	// Name is the field's key in the smith format (its flags are
	// Name+"_truncated" and Name+"_fault", its exact bytes Name+"_b64").
	Name string
	// ECS is where the ECS format writes the value when not under
	// "smith" with Name: there only the _b64 form goes under "smith",
	// when the value is not valid UTF-8.  The connect field is written
	// as source, destination and network.
	ECS string
}

// Fields describes the field ids, indexed by id (index 0 is no field).
var Fields = [maxFieldID + 1]FieldInfo{
	FieldExe:       {Name: "exe", ECS: "process.executable"},
	FieldNodename:  {Name: "nodename"},
	FieldFilename:  {Name: "filename"},
	FieldArgv:      {Name: "argv", ECS: "process.args"},
	FieldCwd:       {Name: "cwd", ECS: "process.working_directory"},
	FieldStdin:     {Name: "stdin"},
	FieldStdout:    {Name: "stdout"},
	FieldTTY:       {Name: "tty"},
	FieldConnectID: {Name: "connect", ECS: "source"},
	FieldModName:   {Name: "mod_name"},
	FieldModPath:   {Name: "mod_path"},
	FieldModParams: {Name: "mod_params"},
	// Decoded into Event.ExeID for the agent's hash cache; no output
	// format writes it.
	FieldExeID: {Name: "exe_id"},
}

// RecordFlags names the record flags (Event.Flags) as the smith format
// and the ECS "smith" object write them: a key set to true.
var RecordFlags = [...]struct {
	Flag uint16
	Name string
}{
	{FlagTruncated, "truncated"},
	{FlagFault, "fault"},
	{FlagExecveat, "execveat"},
	{FlagCompat, "compat"},
	{FlagNoResult, "res_unknown"},
	{FlagRestart, "restarted"},
	{FlagFastOpen, "fastopen"},
}
