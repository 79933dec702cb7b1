package phpserialize

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Object is how Unmarshal represents a PHP object in an any, and how
// Marshal writes one. Props are in document order with their keys as
// written: mangled property names ("\x00*\x00name" protected,
// "\x00Class\x00name" private), or whatever keys a __serialize() body used.
type Object struct {
	Class string
	Props []Prop
}

// Prop is one object property or __serialize() body entry.
type Prop struct {
	Key   Key
	Value any
}

// Get returns the value of the property with the given unmangled name
// (any visibility), or nil.
func (o *Object) Get(name string) any {
	for i := len(o.Props) - 1; i >= 0; i-- {
		if n, _, _ := PropertyName(o.Props[i].Key.String()); n == name {
			return o.Props[i].Value
		}
	}
	return nil
}

// Custom is a C: value: a Serializable object with its opaque payload.
type Custom struct {
	Class string
	Data  []byte
}

// EnumCase is an E: value (PHP 8.1 enum case).
type EnumCase struct {
	Class string
	Case  string
}

// RawValue is serialized data written verbatim by Marshal (it must be one
// well-formed value) and filled with a value's serialized form by
// Unmarshal.
type RawValue []byte

// Marshaler is implemented by types that serialize themselves.
type Marshaler interface {
	MarshalPHP() ([]byte, error)
}

// Unmarshaler is implemented by types that decode themselves from one
// serialized value.
type Unmarshaler interface {
	UnmarshalPHP(raw []byte) error
}

// Marshal returns the serialize() form of v. The mapping:
//
//	nil, nil pointer/map/slice/interface  N;
//	bool                                  b:
//	signed and unsigned integers          i: (unsigned above MaxInt64 is an error)
//	float32, float64                      d: formatted like PHP 8
//	string, []byte                        s:
//	slice, array                          a: list with keys 0..n-1
//	map with string or integer keys       a: sorted by key; numeric string keys become ints like in PHP
//	struct                                a: of its exported fields (tag `php:"name,omitempty"`, "-" skips)
//	*Object, Object                       O:
//	*Custom, Custom                       C:
//	EnumCase                              E:
//	Value, *Value                         as AppendSerialize
//	RawValue, Marshaler                   verbatim (validated)
//	encoding.TextMarshaler                s: of its text
//
// Channels, functions and complex numbers are errors, as are cycles.
func Marshal(v any) ([]byte, error) { return AppendMarshal(nil, v) }

// AppendMarshal is Marshal appending to dst.
func AppendMarshal(dst []byte, v any) ([]byte, error) {
	return marshalAny(dst, v, 0)
}

// marshalAny handles the dynamic types Unmarshal produces without
// reflection and hands everything else to marshalValue.
func marshalAny(dst []byte, v any, depth int) ([]byte, error) {
	if depth > maxMarshalDepth {
		return dst, &UnsupportedError{Msg: "Marshal: nesting deeper than 4096 (cycle?)"}
	}
	var err error
	switch x := v.(type) {
	case nil:
		return AppendNull(dst), nil
	case bool:
		return AppendBool(dst, x), nil
	case int64:
		return AppendInt(dst, x), nil
	case int:
		return AppendInt(dst, int64(x)), nil
	case float64:
		return AppendFloat(dst, x), nil
	case string:
		return AppendString(dst, x), nil
	case []any:
		if x == nil {
			return AppendNull(dst), nil
		}
		dst = append(dst, 'a', ':')
		dst = appendUint(dst, uint64(len(x)))
		dst = append(dst, ':', '{')
		for i, e := range x {
			dst = AppendInt(dst, int64(i))
			if dst, err = marshalAny(dst, e, depth+1); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	case map[string]any:
		if x == nil {
			return AppendNull(dst), nil
		}
		keys := make([]Key, 0, len(x))
		for k := range x {
			keys = append(keys, ArrayKey(k))
		}
		sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })
		dst = append(dst, 'a', ':')
		dst = appendUint(dst, uint64(len(keys)))
		dst = append(dst, ':', '{')
		for _, k := range keys {
			dst = appendKey(dst, k)
			if dst, err = marshalAny(dst, x[k.String()], depth+1); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	case *Object:
		if x == nil {
			return AppendNull(dst), nil
		}
		return marshalObject(dst, x, depth)
	}
	return marshalValue(dst, reflect.ValueOf(v), depth)
}

var (
	typeObject    = reflect.TypeOf(Object{})
	typeCustom    = reflect.TypeOf(Custom{})
	typeEnum      = reflect.TypeOf(EnumCase{})
	typeValue     = reflect.TypeOf(Value{})
	typeRaw       = reflect.TypeOf(RawValue(nil))
	typeBytes     = reflect.TypeOf([]byte(nil))
	typeMarshaler = reflect.TypeOf((*Marshaler)(nil)).Elem()
	typeTextM     = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()
	typeUnmarsh   = reflect.TypeOf((*Unmarshaler)(nil)).Elem()
	typeTextU     = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
	typeAny       = reflect.TypeOf((*any)(nil)).Elem()
)

const maxMarshalDepth = DefaultMaxDepth

func marshalValue(dst []byte, rv reflect.Value, depth int) ([]byte, error) {
	if depth > maxMarshalDepth {
		return dst, &UnsupportedError{Msg: "Marshal: nesting deeper than 4096 (cycle?)"}
	}
	if !rv.IsValid() {
		return AppendNull(dst), nil
	}
	t := rv.Type()
	if t.Implements(typeMarshaler) && !(rv.Kind() == reflect.Pointer && rv.IsNil()) {
		b, err := rv.Interface().(Marshaler).MarshalPHP()
		if err != nil {
			return dst, fmt.Errorf("phpserialize: MarshalPHP of %v: %w", t, err)
		}
		if err := Valid(b); err != nil {
			return dst, fmt.Errorf("phpserialize: MarshalPHP of %v returned invalid data: %w", t, err)
		}
		return append(dst, b...), nil
	}
	switch t {
	case typeRaw:
		b := rv.Bytes()
		if err := Valid(b); err != nil {
			return dst, fmt.Errorf("phpserialize: RawValue: %w", err)
		}
		return append(dst, b...), nil
	case typeValue:
		v := rv.Interface().(Value)
		return AppendSerialize(dst, &v), nil
	case typeObject:
		o := rv.Interface().(Object)
		return marshalObject(dst, &o, depth)
	case typeCustom:
		c := rv.Interface().(Custom)
		v := Value{Kind: KindCustom, Class: []byte(c.Class), Bytes: c.Data}
		return AppendSerialize(dst, &v), nil
	case typeEnum:
		e := rv.Interface().(EnumCase)
		v := Value{Kind: KindEnum, Class: []byte(e.Class), Bytes: []byte(e.Case)}
		return AppendSerialize(dst, &v), nil
	}
	if t.Implements(typeTextM) && !(rv.Kind() == reflect.Pointer && rv.IsNil()) {
		b, err := rv.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return dst, fmt.Errorf("phpserialize: MarshalText of %v: %w", t, err)
		}
		return AppendStringBytes(dst, b), nil
	}
	switch rv.Kind() {
	case reflect.Interface:
		if rv.IsNil() {
			return AppendNull(dst), nil
		}
		return marshalAny(dst, rv.Elem().Interface(), depth+1)
	case reflect.Pointer:
		if rv.IsNil() {
			return AppendNull(dst), nil
		}
		return marshalValue(dst, rv.Elem(), depth+1)
	case reflect.Bool:
		return AppendBool(dst, rv.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return AppendInt(dst, rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return dst, &UnsupportedError{Msg: "Marshal: " + strconv.FormatUint(u, 10) + " exceeds PHP's int range"}
		}
		return AppendInt(dst, int64(u)), nil
	case reflect.Float32, reflect.Float64:
		return AppendFloat(dst, rv.Float()), nil
	case reflect.String:
		return AppendString(dst, rv.String()), nil
	case reflect.Slice:
		if rv.IsNil() {
			return AppendNull(dst), nil
		}
		if t.Elem().Kind() == reflect.Uint8 {
			return AppendStringBytes(dst, rv.Bytes()), nil
		}
		fallthrough
	case reflect.Array:
		n := rv.Len()
		dst = append(dst, 'a', ':')
		dst = strconv.AppendInt(dst, int64(n), 10)
		dst = append(dst, ':', '{')
		var err error
		for i := 0; i < n; i++ {
			dst = AppendInt(dst, int64(i))
			if dst, err = marshalValue(dst, rv.Index(i), depth+1); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	case reflect.Map:
		if rv.IsNil() {
			return AppendNull(dst), nil
		}
		return marshalMap(dst, rv, depth)
	case reflect.Struct:
		return marshalStruct(dst, rv, depth)
	}
	return dst, &UnsupportedError{Msg: "Marshal: unsupported type " + t.String()}
}

func marshalObject(dst []byte, o *Object, depth int) ([]byte, error) {
	dst = appendClass(dst, 'O', []byte(o.Class))
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, int64(len(o.Props)), 10)
	dst = append(dst, ':', '{')
	var err error
	for _, p := range o.Props {
		dst = appendKey(dst, p.Key)
		if dst, err = marshalAny(dst, p.Value, depth+1); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

func marshalMap(dst []byte, rv reflect.Value, depth int) ([]byte, error) {
	type kv struct {
		k Key
		v reflect.Value
	}
	kvs := make([]kv, 0, rv.Len())
	iter := rv.MapRange()
	for iter.Next() {
		mk := iter.Key()
		for mk.Kind() == reflect.Interface && !mk.IsNil() {
			mk = mk.Elem()
		}
		var k Key
		switch mk.Kind() {
		case reflect.String:
			k = ArrayKey(mk.String())
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			k = IntKey(mk.Int())
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			if mk.Uint() > math.MaxInt64 {
				return dst, &UnsupportedError{Msg: "Marshal: map key exceeds PHP's int range"}
			}
			k = IntKey(int64(mk.Uint()))
		default:
			return dst, &UnsupportedError{Msg: "Marshal: unsupported map key type " + mk.Type().String()}
		}
		kvs = append(kvs, kv{k, iter.Value()})
	}
	sort.Slice(kvs, func(i, j int) bool { return keyLess(kvs[i].k, kvs[j].k) })
	dst = append(dst, 'a', ':')
	dst = strconv.AppendInt(dst, int64(len(kvs)), 10)
	dst = append(dst, ':', '{')
	var err error
	for _, e := range kvs {
		dst = appendKey(dst, e.k)
		if dst, err = marshalValue(dst, e.v, depth+1); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// keyLess orders int keys before string keys, each in natural order.
func keyLess(a, b Key) bool {
	if a.IsString != b.IsString {
		return !a.IsString
	}
	if a.IsString {
		return a.Str < b.Str
	}
	return a.Int < b.Int
}

type fieldInfo struct {
	name      string
	index     []int
	omitEmpty bool
}

var fieldCache sync.Map // reflect.Type -> []fieldInfo

func structFields(t reflect.Type) []fieldInfo {
	if f, ok := fieldCache.Load(t); ok {
		return f.([]fieldInfo)
	}
	var fs []fieldInfo
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("php")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = sf.Name
		}
		fs = append(fs, fieldInfo{name: name, index: sf.Index, omitEmpty: opts == "omitempty"})
	}
	fieldCache.Store(t, fs)
	return fs
}

func marshalStruct(dst []byte, rv reflect.Value, depth int) ([]byte, error) {
	fs := structFields(rv.Type())
	n := 0
	for _, f := range fs {
		if !(f.omitEmpty && rv.FieldByIndex(f.index).IsZero()) {
			n++
		}
	}
	dst = append(dst, 'a', ':')
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, ':', '{')
	var err error
	for _, f := range fs {
		fv := rv.FieldByIndex(f.index)
		if f.omitEmpty && fv.IsZero() {
			continue
		}
		dst = appendKey(dst, ArrayKey(f.name))
		if dst, err = marshalValue(dst, fv, depth+1); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

var decoderPool = sync.Pool{New: func() any { return new(Decoder) }}

// Unmarshal decodes one serialized value into the value v points to. The
// mapping into an any (or interface{}):
//
//	N; → nil        b: → bool      i: → int64     d: → float64   s: → string
//	a: → []any when its keys are 0..n-1 in order, else map[string]any
//	     (int keys written in decimal; duplicate keys: the last wins)
//	O: → *Object    C: → *Custom   E: → EnumCase
//	R:/r: → the value they point at (the same *Object or map for objects
//	     and arrays, so shared objects stay shared)
//
// Typed targets: integers and floats accept i: (floats also d:), with
// range checks; string and []byte accept s:; slices and arrays take lists;
// maps take arrays and objects (keys converted to the map's key type);
// structs take arrays and objects, matching keys to the `php` tag or field
// name, property names unmangled; pointers are allocated; N; sets the zero
// value. RawValue, Unmarshaler and encoding.TextUnmarshaler receive their
// value's serialized bytes or string.
func Unmarshal(data []byte, v any) error {
	d := decoderPool.Get().(*Decoder)
	defer func() {
		d.Reset()
		decoderPool.Put(d)
	}()
	root, err := d.Decode(data)
	if err != nil {
		return err
	}
	return d.Assign(root, v)
}

// Assign stores a decoded value into the Go value v points to, with the
// mapping of Unmarshal; references are resolved against this Decoder.
func (d *Decoder) Assign(val *Value, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return &UnsupportedError{Msg: "Unmarshal needs a non-nil pointer"}
	}
	a := assigner{d: d}
	return a.assign(rv.Elem(), val, 0, "")
}

type assigner struct {
	d      *Decoder
	shared map[*Value]any  // objects and maps already built, for R:/r:
	active map[*Value]bool // lists being built (cycle detection)
}

// remember records a built object or map so references reuse it. Only
// needed when the input has references at all.
func (a *assigner) remember(v *Value, x any) {
	if a.d.p.refs {
		if a.shared == nil {
			a.shared = map[*Value]any{}
		}
		a.shared[v] = x
	}
}

// UnmarshalTypeError says a PHP value could not be stored in a Go type.
type UnmarshalTypeError struct {
	Path string // key path, slash-joined
	PHP  Kind
	Type reflect.Type
	Msg  string
}

func (e *UnmarshalTypeError) Error() string {
	msg := "phpserialize: cannot unmarshal " + e.PHP.String() + " into " + e.Type.String()
	if e.Path != "" {
		msg += " at " + e.Path
	}
	if e.Msg != "" {
		msg += ": " + e.Msg
	}
	return msg
}

func join(path string, k Key) string {
	if path == "" {
		return k.String()
	}
	return path + "/" + k.String()
}

func (a *assigner) assign(rv reflect.Value, val *Value, depth int, path string) error {
	if depth > maxMarshalDepth {
		return &UnmarshalTypeError{Path: path, PHP: val.Kind, Type: rv.Type(), Msg: "nesting too deep (reference cycle?)"}
	}
	// Follow references to what they designate.
	if val.Kind == KindRef || val.Kind == KindObjectRef {
		target := a.d.Slot(val.Int)
		hops := 0
		for target != nil && (target.Kind == KindRef || target.Kind == KindObjectRef) && hops < 64 {
			target = a.d.Slot(target.Int)
			hops++
		}
		if target == nil || target.Kind == KindRef || target.Kind == KindObjectRef {
			return &UnmarshalTypeError{Path: path, PHP: val.Kind, Type: rv.Type(), Msg: "reference to a slot without a decoded value"}
		}
		if _, built := a.shared[target]; a.active[target] && !built {
			return &UnmarshalTypeError{Path: path, PHP: val.Kind, Type: rv.Type(), Msg: "reference cycle through a list"}
		}
		val = target
	}
	if rv.Kind() == reflect.Pointer && val.Kind != KindNull {
		t := rv.Type()
		if !t.Implements(typeUnmarsh) && !t.Implements(typeTextU) || rv.IsNil() {
			if rv.IsNil() {
				rv.Set(reflect.New(t.Elem()))
			}
			if !t.Implements(typeUnmarsh) && !t.Implements(typeTextU) {
				return a.assign(rv.Elem(), val, depth+1, path)
			}
		}
	}
	if rv.CanAddr() {
		pv := rv.Addr()
		if pv.Type().Implements(typeUnmarsh) {
			return pv.Interface().(Unmarshaler).UnmarshalPHP(AppendSerialize(nil, val))
		}
		if val.Kind == KindString && pv.Type().Implements(typeTextU) {
			return pv.Interface().(encoding.TextUnmarshaler).UnmarshalText(val.Bytes)
		}
	}
	if rv.Type() == typeRaw {
		rv.SetBytes(AppendSerialize(nil, val))
		return nil
	}
	if rv.Kind() == reflect.Interface {
		if rv.NumMethod() != 0 {
			return &UnmarshalTypeError{Path: path, PHP: val.Kind, Type: rv.Type()}
		}
		if val.Kind == KindNull {
			rv.SetZero()
			return nil
		}
		x, err := a.toAny(val, depth, path)
		if err != nil {
			return err
		}
		rv.Set(reflect.ValueOf(x))
		return nil
	}
	terr := func(msg string) error {
		return &UnmarshalTypeError{Path: path, PHP: val.Kind, Type: rv.Type(), Msg: msg}
	}
	switch val.Kind {
	case KindNull:
		rv.SetZero()
		return nil
	case KindBool:
		if rv.Kind() == reflect.Bool {
			rv.SetBool(val.Int != 0)
			return nil
		}
	case KindInt:
		switch rv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if rv.OverflowInt(val.Int) {
				return terr("value " + strconv.FormatInt(val.Int, 10) + " out of range")
			}
			rv.SetInt(val.Int)
			return nil
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			if val.Int < 0 || rv.OverflowUint(uint64(val.Int)) {
				return terr("value " + strconv.FormatInt(val.Int, 10) + " out of range")
			}
			rv.SetUint(uint64(val.Int))
			return nil
		case reflect.Float32, reflect.Float64:
			rv.SetFloat(float64(val.Int))
			return nil
		}
	case KindFloat:
		if rv.Kind() == reflect.Float32 || rv.Kind() == reflect.Float64 {
			rv.SetFloat(val.FloatValue())
			return nil
		}
	case KindString:
		switch {
		case rv.Kind() == reflect.String:
			rv.SetString(string(val.Bytes))
			return nil
		case rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8:
			rv.SetBytes(append([]byte(nil), val.Bytes...))
			return nil
		}
	case KindEnum:
		switch {
		case rv.Type() == typeEnum:
			rv.Set(reflect.ValueOf(EnumCase{Class: string(val.Class), Case: string(val.Bytes)}))
			return nil
		case rv.Kind() == reflect.String:
			rv.SetString(string(val.Bytes))
			return nil
		}
	case KindCustom:
		if rv.Type() == typeCustom {
			rv.Set(reflect.ValueOf(Custom{Class: string(val.Class), Data: append([]byte(nil), val.Bytes...)}))
			return nil
		}
	case KindArray, KindObject:
		return a.assignContainer(rv, val, depth, path)
	}
	return terr("")
}

func (a *assigner) assignContainer(rv reflect.Value, val *Value, depth int, path string) error {
	terr := func(msg string) error {
		return &UnmarshalTypeError{Path: path, PHP: val.Kind, Type: rv.Type(), Msg: msg}
	}
	isArray := val.Kind == KindArray
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if !isArray || !val.IsList() {
			return terr("not a list")
		}
		n := len(val.Entries)
		if rv.Kind() == reflect.Array {
			if n > rv.Len() {
				return terr("list of " + strconv.Itoa(n) + " elements does not fit")
			}
			rv.SetZero()
		} else {
			rv.Set(reflect.MakeSlice(rv.Type(), n, n))
		}
		for i := 0; i < n; i++ {
			e := &val.Entries[i]
			if err := a.assign(rv.Index(i), &e.Value, depth+1, join(path, e.Key)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		kt := rv.Type().Key()
		if rv.IsNil() {
			rv.Set(reflect.MakeMapWithSize(rv.Type(), len(val.Entries)))
		}
		for i := range val.Entries {
			e := &val.Entries[i]
			kv := reflect.New(kt).Elem()
			switch kt.Kind() {
			case reflect.String:
				kv.SetString(e.Key.String())
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				if e.Key.IsString || kv.OverflowInt(e.Key.Int) {
					return terr("key " + strconv.Quote(e.Key.String()) + " does not fit " + kt.String())
				}
				kv.SetInt(e.Key.Int)
			case reflect.Interface:
				if kt.NumMethod() != 0 {
					return terr("unsupported map key type")
				}
				if e.Key.IsString {
					kv.Set(reflect.ValueOf(e.Key.Str))
				} else {
					kv.Set(reflect.ValueOf(e.Key.Int))
				}
			default:
				return terr("unsupported map key type " + kt.String())
			}
			ev := reflect.New(rv.Type().Elem()).Elem()
			if err := a.assign(ev, &e.Value, depth+1, join(path, e.Key)); err != nil {
				return err
			}
			rv.SetMapIndex(kv, ev)
		}
		return nil
	case reflect.Struct:
		if rv.Type() == typeObject {
			if isArray {
				return terr("an array is not an object")
			}
			o, err := a.object(val, depth, path)
			if err != nil {
				return err
			}
			rv.Set(reflect.ValueOf(*o))
			return nil
		}
		fs := structFields(rv.Type())
		for i := range val.Entries {
			e := &val.Entries[i]
			name := e.Key.String()
			if !isArray {
				name, _, _ = PropertyName(name)
			}
			for _, f := range fs {
				if f.name == name || strings.EqualFold(f.name, name) {
					if err := a.assign(rv.FieldByIndex(f.index), &e.Value, depth+1, join(path, e.Key)); err != nil {
						return err
					}
					break
				}
			}
		}
		return nil
	}
	return terr("")
}

func (a *assigner) object(val *Value, depth int, path string) (*Object, error) {
	if s, ok := a.shared[val]; ok {
		return s.(*Object), nil
	}
	o := &Object{Class: string(val.Class), Props: make([]Prop, len(val.Entries))}
	a.remember(val, o)
	for i := range val.Entries {
		e := &val.Entries[i]
		x, err := a.toAny(&e.Value, depth+1, join(path, e.Key))
		if err != nil {
			return nil, err
		}
		o.Props[i] = Prop{Key: e.Key, Value: x}
	}
	return o, nil
}

func (a *assigner) toAny(val *Value, depth int, path string) (any, error) {
	if depth > maxMarshalDepth {
		return nil, &UnmarshalTypeError{Path: path, PHP: val.Kind, Type: typeAny, Msg: "nesting too deep (reference cycle?)"}
	}
	switch val.Kind {
	case KindNull:
		return nil, nil
	case KindBool:
		return val.Int != 0, nil
	case KindInt:
		return val.Int, nil
	case KindFloat:
		return val.FloatValue(), nil
	case KindString:
		return string(val.Bytes), nil
	case KindEnum:
		return EnumCase{Class: string(val.Class), Case: string(val.Bytes)}, nil
	case KindCustom:
		return &Custom{Class: string(val.Class), Data: append([]byte(nil), val.Bytes...)}, nil
	case KindObject:
		return a.object(val, depth, path)
	case KindRef, KindObjectRef:
		var x any
		rv := reflect.ValueOf(&x).Elem()
		if err := a.assign(rv, val, depth+1, path); err != nil {
			return nil, err
		}
		return x, nil
	case KindArray:
		if s, ok := a.shared[val]; ok {
			return s, nil
		}
		if a.d.p.refs {
			if a.active == nil {
				a.active = map[*Value]bool{}
			}
			if a.active[val] {
				return nil, &UnmarshalTypeError{Path: path, PHP: val.Kind, Type: typeAny, Msg: "reference cycle through a list"}
			}
			a.active[val] = true
			defer delete(a.active, val)
		}
		if val.IsList() {
			l := make([]any, len(val.Entries))
			for i := range val.Entries {
				x, err := a.toAny(&val.Entries[i].Value, depth+1, join(path, val.Entries[i].Key))
				if err != nil {
					return nil, err
				}
				l[i] = x
			}
			return l, nil
		}
		m := make(map[string]any, len(val.Entries))
		a.remember(val, m)
		for i := range val.Entries {
			x, err := a.toAny(&val.Entries[i].Value, depth+1, join(path, val.Entries[i].Key))
			if err != nil {
				return nil, err
			}
			m[val.Entries[i].Key.String()] = x
		}
		return m, nil
	}
	return nil, &UnmarshalTypeError{Path: path, PHP: val.Kind, Type: typeAny}
}
