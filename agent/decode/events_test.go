// SPDX-License-Identifier: GPL-2.0

package decode

import (
	"strconv"
	"testing"
)

// TestEventTable checks the table is whole: every event type decodes as
// one, names and data types are unique and right, and every field id has
// a name and belongs to some event.
func TestEventTable(t *testing.T) {
	names, used := map[string]bool{}, map[uint16]bool{}
	for _, id := range CommonFields {
		used[id] = true
	}
	for i := range Events {
		info := &Events[i]
		if info.DataType != strconv.Itoa(int(info.Type)) {
			t.Errorf("%s: data_type %q, type %d", info.Name, info.DataType, info.Type)
		}
		if names[info.Name] || info.Name == "" || info.ECSCategory == "" || len(info.ECSType) == 0 {
			t.Errorf("entry %d (%s): name repeated or empty, or no ECS category/type", i, info.Name)
		}
		names[info.Name] = true
		if EventByType(info.Type) != info {
			t.Errorf("%s: EventByType does not find it", info.Name)
		}
		ev := &Event{Type: info.Type}
		for _, id := range info.Fields {
			if id == 0 || id > maxFieldID {
				t.Errorf("%s: field id %d unknown", info.Name, id)
				continue
			}
			used[id] = true
			ev.Fields[id] = Field{Present: true, Value: []byte("v")}
			ev.HasConnect = ev.HasConnect || id == FieldConnectID
			ev.HasExeID = ev.HasExeID || id == FieldExeID
		}
		if k, err := Decode(AppendEvent(nil, ev), &Event{}); k != KindEvent || err != nil {
			t.Errorf("%s: decoded as kind %d, %v", info.Name, k, err)
		}
	}
	if EventByType(TypeLost) != nil || EventByType(TypeTest) != nil || EventByType(TypePad) != nil {
		t.Error("a record type that is no event is in the table")
	}
	if DataTypeLost != strconv.Itoa(int(TypeLost)) {
		t.Errorf("DataTypeLost %q", DataTypeLost)
	}
	fieldNames := map[string]bool{}
	for id := uint16(1); id <= maxFieldID; id++ {
		name := Fields[id].Name
		if name == "" || fieldNames[name] || !used[id] {
			t.Errorf("field %d: name %q empty or repeated, or in no event", id, name)
		}
		fieldNames[name] = true
	}
	var all uint16
	for _, f := range RecordFlags {
		if f.Flag == 0 || all&f.Flag != 0 || f.Name == "" {
			t.Errorf("record flag %q (%#x) zero, repeated or unnamed", f.Name, f.Flag)
		}
		all |= f.Flag
	}
}
