package engine

import (
	"bytes"
	"encoding/json"
	"math"

	"github.com/phpsessd/phpsessd/phpserialize"
)

// jsonView decodes session data for INFO into values encoding/json can
// write: lists become JSON arrays, other arrays ordered objects, objects
// {"__class": …, properties…}, Serializable payloads and references are
// marked with "__serialized" and "__ref". It returns nil when the format is
// opaque or the data does not decode; INFO then shows sizes only.
func jsonView(data []byte, format string) any {
	format = effectiveFormat(format)
	if !mergeable(format) {
		return nil
	}
	var d phpserialize.Decoder
	v, err := d.DecodeSession(data, format)
	if err != nil {
		return nil
	}
	return jsonValue(v)
}

func jsonValue(v *phpserialize.Value) any {
	switch v.Kind {
	case phpserialize.KindNull:
		return nil
	case phpserialize.KindBool:
		return v.Bool()
	case phpserialize.KindInt:
		return v.Int
	case phpserialize.KindFloat:
		f := v.FloatValue()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return string(v.Bytes)
		}
		return f
	case phpserialize.KindString:
		return string(v.Bytes)
	case phpserialize.KindArray:
		if isListValue(v) {
			out := make([]any, len(v.Entries))
			for i := range v.Entries {
				out[i] = jsonValue(&v.Entries[i].Value)
			}
			return out
		}
		return entriesObject(nil, v.Entries, false)
	case phpserialize.KindObject:
		return entriesObject(orderedObject{{"__class", string(v.Class)}}, v.Entries, true)
	case phpserialize.KindCustom:
		return orderedObject{{"__class", string(v.Class)}, {"__serialized", string(v.Bytes)}}
	case phpserialize.KindEnum:
		return orderedObject{{"__enum", string(v.Class) + "::" + string(v.Bytes)}}
	case phpserialize.KindRef, phpserialize.KindObjectRef:
		return orderedObject{{"__ref", v.Int}}
	}
	return nil
}

func isListValue(v *phpserialize.Value) bool {
	for i, e := range v.Entries {
		if e.Key.IsString || e.Key.Int != int64(i) {
			return false
		}
	}
	return true
}

func entriesObject(out orderedObject, es []phpserialize.Entry, props bool) orderedObject {
	for i := range es {
		name := es[i].Key.String()
		if props {
			name, _, _ = phpserialize.PropertyName(name)
		}
		out = append(out, jsonField{name, jsonValue(&es[i].Value)})
	}
	return out
}

type jsonField struct {
	name  string
	value any
}

// orderedObject keeps PHP's key order in the JSON output.
type orderedObject []jsonField

func (o orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(f.name)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
