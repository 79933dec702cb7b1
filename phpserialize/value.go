package phpserialize

import (
	"strconv"
)

// Kind is the type of a serialized value, one per serialize() type letter.
type Kind uint8

const (
	KindNull      Kind = iota // N;
	KindBool                  // b:0; b:1;
	KindInt                   // i:5;
	KindFloat                 // d:0.5;
	KindString                // s:3:"abc"; (and the escaped S: form)
	KindArray                 // a:N:{...}
	KindObject                // O:len:"Class":N:{...}, also __serialize() bodies
	KindCustom                // C:len:"Class":len:{payload} (Serializable)
	KindEnum                  // E:len:"Class:Case";
	KindRef                   // R:n; a PHP reference (&) to slot n
	KindObjectRef             // r:n; the same object (or enum) as slot n
)

var kindNames = [...]string{"null", "bool", "int", "float", "string", "array", "object", "custom", "enum", "ref", "objref"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Value is one decoded serialize() value in an ordered, lossless form:
// re-encoding a decoded Value with AppendSerialize gives back the input
// bytes for everything PHP writes. Byte slices alias the decoded input
// unless noted, so the input must stay unchanged while the Value is used.
type Value struct {
	Kind Kind
	// Int is the integer of KindInt, 0 or 1 for KindBool, the slot number
	// of KindRef and KindObjectRef, and for KindCustom the number of
	// reference slots the payload uses.
	Int int64
	// Bytes is the content of KindString (unescaped for S:, which is
	// written back in the plain s: form PHP uses), the float
	// exactly as written for KindFloat (empty: use Float instead), the
	// payload of KindCustom and the case name of KindEnum.
	Bytes []byte
	// Float is used by the encoder for a KindFloat whose Bytes is empty
	// (values built in Go); decoded floats keep their text in Bytes.
	Float float64
	// Class is the class name of KindObject and KindCustom and the enum
	// name of KindEnum.
	Class []byte
	// Entries are the elements of KindArray and the properties of
	// KindObject in document order, duplicates included. Property names
	// are mangled the PHP way (see PropertyName).
	Entries []Entry
}

// Entry is one element of an array or object.
type Entry struct {
	Key   Key
	Value Value
}

// NewNull, NewBool, NewInt, NewFloat and NewString build scalar Values.
func NewNull() Value { return Value{Kind: KindNull} }

func NewBool(b bool) Value {
	if b {
		return Value{Kind: KindBool, Int: 1}
	}
	return Value{Kind: KindBool}
}

func NewInt(i int64) Value     { return Value{Kind: KindInt, Int: i} }
func NewFloat(f float64) Value { return Value{Kind: KindFloat, Float: f} }
func NewString(s string) Value { return Value{Kind: KindString, Bytes: []byte(s)} }

// NewArray builds an array Value from entries, keys as given.
func NewArray(e ...Entry) Value { return Value{Kind: KindArray, Entries: e} }

// NewObject builds an object Value with the given (mangled) properties.
func NewObject(class string, props ...Entry) Value {
	return Value{Kind: KindObject, Class: []byte(class), Entries: props}
}

// NewEnum builds an enum case Value.
func NewEnum(class, kase string) Value {
	return Value{Kind: KindEnum, Class: []byte(class), Bytes: []byte(kase)}
}

// Bool reports the value of a KindBool.
func (v *Value) Bool() bool { return v.Int != 0 }

// FloatValue returns the number of a KindFloat (parsing its text), or of a
// KindInt converted.
func (v *Value) FloatValue() float64 {
	switch v.Kind {
	case KindFloat:
		if len(v.Bytes) == 0 {
			return v.Float
		}
		if validFloatText(v.Bytes) {
			return parseFloatText(v.Bytes)
		}
		return 0
	case KindInt:
		return float64(v.Int)
	}
	return 0
}

// Len returns the number of entries of an array or object.
func (v *Value) Len() int { return len(v.Entries) }

// Get returns the value PHP sees for key k in an array or object: with
// duplicate keys in the input, the last one wins. For arrays, pass keys
// through ArrayKey when they come from text.
func (v *Value) Get(k Key) *Value {
	for i := len(v.Entries) - 1; i >= 0; i-- {
		if v.Entries[i].Key.Equal(k) {
			return &v.Entries[i].Value
		}
	}
	return nil
}

// IsList reports whether v is an array whose keys are 0, 1, ... n-1 in
// order (what PHP's array_is_list checks).
func (v *Value) IsList() bool {
	if v.Kind != KindArray {
		return false
	}
	for i := range v.Entries {
		k := v.Entries[i].Key
		if k.IsString || k.Int != int64(i) {
			return false
		}
	}
	return true
}

// HasDuplicateKeys reports whether an array or object lists a key twice
// (never the case in data PHP writes).
func (v *Value) HasDuplicateKeys() bool {
	n := len(v.Entries)
	if n < 2 {
		return false
	}
	if n <= 16 {
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				if v.Entries[i].Key.Equal(v.Entries[j].Key) {
					return true
				}
			}
		}
		return false
	}
	ints := make(map[int64]struct{}, n)
	strs := make(map[string]struct{}, n)
	for i := range v.Entries {
		k := v.Entries[i].Key
		if k.IsString {
			if _, ok := strs[k.Str]; ok {
				return true
			}
			strs[k.Str] = struct{}{}
		} else {
			if _, ok := ints[k.Int]; ok {
				return true
			}
			ints[k.Int] = struct{}{}
		}
	}
	return false
}

// Dedupe resolves duplicate keys the way unserialize() does: each key
// keeps the position of its first occurrence and the value of its last.
// It rewrites v.Entries in place. Slot numbers of later R:/r: references
// are not renumbered.
func (v *Value) Dedupe() {
	if !v.HasDuplicateKeys() {
		return
	}
	out := v.Entries[:0:0]
	for i := range v.Entries {
		e := v.Entries[i]
		found := false
		for j := range out {
			if out[j].Key.Equal(e.Key) {
				out[j].Value = e.Value
				found = true
				break
			}
		}
		if !found {
			out = append(out, e)
		}
	}
	v.Entries = out
}

// Visibility of an object property, as encoded in its mangled name.
type Visibility uint8

const (
	Public Visibility = iota
	Protected
	Private
)

func (vis Visibility) String() string {
	switch vis {
	case Protected:
		return "protected"
	case Private:
		return "private"
	}
	return "public"
}

// PropertyName splits a mangled property name: "\x00*\x00name" is
// protected, "\x00Class\x00name" private to Class, anything else public.
func PropertyName(mangled string) (name, class string, vis Visibility) {
	if len(mangled) < 3 || mangled[0] != 0 {
		return mangled, "", Public
	}
	for i := 1; i < len(mangled); i++ {
		if mangled[i] == 0 {
			c := mangled[1:i]
			if c == "*" {
				return mangled[i+1:], "", Protected
			}
			return mangled[i+1:], c, Private
		}
	}
	return mangled, "", Public
}

// MangleProperty builds the name PHP stores for a property of the given
// visibility (class is only used for Private).
func MangleProperty(name, class string, vis Visibility) string {
	switch vis {
	case Protected:
		return "\x00*\x00" + name
	case Private:
		return "\x00" + class + "\x00" + name
	}
	return name
}
