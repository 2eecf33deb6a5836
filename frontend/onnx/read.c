/* read.c: decoding ONNX files: the ModelProto with protoc-c's generated
 * unpacker (allocating from the compilation's arena), and TensorProto
 * data in each of its encodings (raw little-endian bytes, the typed
 * repeated fields, external data files).  External data is read only
 * from inside the model's own directory.
 */
#define _XOPEN_SOURCE 700      /* realpath */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "onnx.h"

static Arena *pb_arena;

static void *
pb_alloc(void *data, size_t n)
{
	(void)data;
	return arena_alloc(pb_arena, n ? n : 1);
}

static void
pb_free(void *data, void *p)
{
	(void)data, (void)p;    /* the arena frees everything at once */
}

static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

/* protobuf-c's decoder recurses once per level of nested messages and has
 * no bound of its own, so a small hostile file could exhaust the stack.
 * The wire format is walked first, into the fields the schema says hold
 * messages, and more than MAXNEST levels are refused: protobuf's own
 * default limit.  A malformed encoding ends the walk early; the decoder
 * then reports it. */
enum { MAXNEST = 100 };

static bool
varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/* False when the messages in [p, end), of type d at nesting level, nest
 * more than MAXNEST levels deep. */
static bool
shallow(const uint8_t *p, const uint8_t *end,
        const ProtobufCMessageDescriptor *d, int level)
{
	if (level > MAXNEST)
		return false;
	while (p < end) {
		uint64_t key, n;
		if (!varint(&p, end, &key))
			return true;
		switch (key & 7) {
		case PROTOBUF_C_WIRE_TYPE_VARINT:
			if (!varint(&p, end, &n))
				return true;
			break;
		case PROTOBUF_C_WIRE_TYPE_64BIT:
		case PROTOBUF_C_WIRE_TYPE_32BIT:
			n = (key & 7) == PROTOBUF_C_WIRE_TYPE_64BIT ? 8 : 4;
			if (n > (uint64_t)(end - p))
				return true;
			p += n;
			break;
		case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED: {
			if (!varint(&p, end, &n) || n > (uint64_t)(end - p))
				return true;
			const ProtobufCFieldDescriptor *f = key >> 3 > UINT32_MAX ?
			    NULL : protobuf_c_message_descriptor_get_field(d,
			                                           (unsigned)(key >> 3));
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
			    !shallow(p, p + n, f->descriptor, level + 1))
				return false;
			p += n;
			break;
		}
		default:                /* groups: the decoder refuses them */
			return true;
		}
	}
	return true;
}

static void
check_nesting(const char *path, const uint8_t *buf, size_t len,
              const ProtobufCMessageDescriptor *d)
{
	if (!shallow(buf, buf + len, d, 1))
		fatal("%s: not a valid ONNX file: messages nested more than %d "
		      "levels deep", path, MAXNEST);
}

/* protobuf-c leaves an absent proto2 string field NULL; the importer reads
 * names as strings, so every absent string of msg and of the messages in
 * it becomes "" here.  A field of a oneof counts only when it is the one
 * set: the others share its storage. */
static void
fill_strings(ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		char *p = (char *)msg + f->offset;
		const char *q = (char *)msg + f->quantifier_offset;
		bool str = f->type == PROTOBUF_C_TYPE_STRING;
		if (f->type != PROTOBUF_C_TYPE_MESSAGE && !str)
			continue;
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(const uint32_t *)q != f->id)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			void **v = *(void ***)p;
			for (size_t k = 0; k < *(const size_t *)q; k++)
				if (str && !v[k])
					v[k] = "";
				else if (!str)
					fill_strings(v[k]);
		} else if (str && !*(char **)p) {
			*(const char **)p = "";
		} else if (!str && *(void **)p) {
			fill_strings(*(ProtobufCMessage **)p);
		}
	}
}

Onnx__ModelProto *
onnx_read_model(Arena *a, const char *path)
{
	size_t len;
	uint8_t *buf = (uint8_t *)read_file(a, path, &len);
	if (!buf)
		fatal("cannot read '%s': %s", path, strerror(errno));
	check_nesting(path, buf, len, &onnx__model_proto__descriptor);
	pb_arena = a;
	Onnx__ModelProto *m = onnx__model_proto__unpack(&pb_allocator, len, buf);
	if (!m)
		fatal("%s: not a valid ONNX model (the protobuf does not decode; "
		      "is the file truncated or corrupt?)", path);
	if (!m->graph)
		fatal("%s: the ONNX model has no graph", path);
	fill_strings(&m->base);
	return m;
}

/* ONNX TensorProto.DataType -> DT_, and names for the ones kiln lacks. */
static const struct {
	int dt;
	const char *name;
} dtypes[] = {
	[1] = {DT_F32, "float"},    [2] = {DT_U8, "uint8"},
	[3] = {DT_I8, "int8"},      [4] = {DT_U16, "uint16"},
	[5] = {DT_I16, "int16"},    [6] = {DT_I32, "int32"},
	[7] = {DT_I64, "int64"},    [8] = {-1, "string"},
	[9] = {DT_BOOL, "bool"},    [10] = {DT_F16, "float16"},
	[11] = {DT_F64, "double"},  [12] = {DT_U32, "uint32"},
	[13] = {DT_U64, "uint64"},  [14] = {-1, "complex64"},
	[15] = {-1, "complex128"},  [16] = {DT_BF16, "bfloat16"},
};

int
onnx_dtype(int t)
{
	if (t <= 0 || t >= (int)countof(dtypes) || !dtypes[t].name)
		return -1;
	return dtypes[t].dt;
}

const char *
onnx_dtype_name(int t)
{
	if (t <= 0 || t >= (int)countof(dtypes) || !dtypes[t].name)
		return "undefined";
	return dtypes[t].name;
}

/* The ONNX data type of a kiln dtype (for export and for messages). */
int
onnx_from_dtype(int dt)
{
	for (int t = 1; t < (int)countof(dtypes); t++)
		if (dtypes[t].name && dtypes[t].dt == dt)
			return t;
	return 0;
}

static const char *
ext_field(const Onnx__TensorProto *t, const char *key)
{
	for (size_t i = 0; i < t->n_external_data; i++)
		if (t->external_data[i]->key &&
		    strcmp(t->external_data[i]->key, key) == 0)
			return t->external_data[i]->value;
	return NULL;
}

/* Reads nbytes of external data for t, confined to dir. */
static const char *
read_external(Arena *a, const Onnx__TensorProto *t, const char *dir,
              size_t nbytes, void **data)
{
	const char *loc = ext_field(t, "location");
	if (!loc || !*loc)
		return "external data without a location";
	if (!dir)
		return "external data is not allowed here";
	if (loc[0] == '/')
		return arena_printf(a, "external data path '%s' is absolute; "
		                    "it must be inside the model's directory", loc);
	for (const char *p = loc; *p; ) {
		size_t k = strcspn(p, "/");
		if (k == 2 && p[0] == '.' && p[1] == '.')
			return arena_printf(a, "external data path '%s' leaves the "
			                    "model's directory", loc);
		p += k + (p[k] == '/');
	}
	char *path = arena_printf(a, "%s/%s", dir, loc);
	char rdir[PATH_MAX], rpath[PATH_MAX];
	if (!realpath(dir, rdir) || !realpath(path, rpath))
		return arena_printf(a, "cannot open external data '%s': %s", loc,
		                    strerror(errno));
	size_t n = strlen(rdir);
	if (strncmp(rpath, rdir, n) != 0 || rpath[n] != '/')
		return arena_printf(a, "external data path '%s' leaves the "
		                    "model's directory (through a link)", loc);
	const char *s = ext_field(t, "offset");
	long long off = s ? atoll(s) : 0;
	s = ext_field(t, "length");
	if (s && atoll(s) != (long long)nbytes)
		return arena_printf(a, "external data '%s': length %s, but the "
		                    "tensor needs %zu bytes", loc, s, nbytes);
	FILE *f = fopen(rpath, "rb");
	if (!f)
		return arena_printf(a, "cannot open external data '%s': %s", loc,
		                    strerror(errno));
	/* the file must hold the data before memory is taken for it */
	bool ok = off >= 0 && fseek(f, 0, SEEK_END) == 0 &&
	          ftell(f) >= off && (uint64_t)(ftell(f) - off) >= nbytes;
	if (ok) {
		*data = arena_alloc(a, nbytes ? nbytes : 1);
		ok = fseek(f, off, SEEK_SET) == 0 &&
		     fread(*data, 1, nbytes, f) == nbytes;
	}
	fclose(f);
	if (!ok)
		return arena_printf(a, "external data '%s' is shorter than the "
		                    "tensor (%zu bytes at offset %lld)", loc, nbytes,
		                    off);
	return NULL;
}

/* How many values the typed field for t's data type holds. */
static size_t
read_fields_count(const Onnx__TensorProto *t)
{
	switch (t->data_type) {
	case 1: return t->n_float_data;
	case 7: return t->n_int64_data;
	case 11: return t->n_double_data;
	case 12: case 13: return t->n_uint64_data;
	/* float16 and bfloat16 come as their raw 16-bit patterns */
	case 2: case 3: case 4: case 5: case 6: case 9: case 10: case 16:
		return t->n_int32_data;
	}
	return 0;
}

/* Copies typed-field data into the kiln element type. */
static const char *
read_fields(Arena *a, const Onnx__TensorProto *t, int dt, int64_t n,
            void **data)
{
	size_t have = read_fields_count(t);
	if ((int64_t)have != n)
		return arena_printf(a, "tensor has %zu values, its shape needs %lld",
		                    have, (long long)n);
	void *out = *data = arena_alloc(a, n ? n * dt_size[dt] : 1);
	for (int64_t i = 0; i < n; i++)
		switch (dt) {
		case DT_F32: ((float *)out)[i] = t->float_data[i]; break;
		case DT_F64: ((double *)out)[i] = t->double_data[i]; break;
		case DT_I64: ((int64_t *)out)[i] = t->int64_data[i]; break;
		case DT_I32: ((int32_t *)out)[i] = t->int32_data[i]; break;
		case DT_I8: ((int8_t *)out)[i] = (int8_t)t->int32_data[i]; break;
		case DT_U8: ((uint8_t *)out)[i] = (uint8_t)t->int32_data[i]; break;
		case DT_BOOL: ((uint8_t *)out)[i] = t->int32_data[i] != 0; break;
		case DT_I16: ((int16_t *)out)[i] = (int16_t)t->int32_data[i]; break;
		case DT_F16: case DT_BF16: case DT_U16:
			((uint16_t *)out)[i] = (uint16_t)t->int32_data[i];
			break;
		case DT_U32: ((uint32_t *)out)[i] = (uint32_t)t->uint64_data[i]; break;
		case DT_U64: ((uint64_t *)out)[i] = t->uint64_data[i]; break;
		}
	return NULL;
}

const char *
onnx_tensor(Arena *a, const Onnx__TensorProto *t, const char *dir,
            Type *type, void **data)
{
	int dt = onnx_dtype(t->data_type);
	if (dt < 0)
		return arena_printf(a, "tensor element type %s is not supported",
		                    onnx_dtype_name(t->data_type));
	if (t->n_dims > IR_MAXRANK)
		return arena_printf(a, "tensor rank %zu is above kiln's maximum %d",
		                    t->n_dims, IR_MAXRANK);
	*type = (Type){.dtype = dt, .rank = (int)t->n_dims};
	int64_t n = 1;
	/* A dimension may be 0 here: an empty constant can still be read at
	 * build time (an empty axes list); values computed at run time are
	 * never empty (the shape rules and the importer's inputs check). */
	for (size_t i = 0; i < t->n_dims; i++) {
		if (t->dims[i] < 0)
			return arena_printf(a, "tensor dimension %zu is %lld", i,
			                    (long long)t->dims[i]);
		if (t->dims[i] > 0 && t->dims[i] > INT64_MAX / 16 / MAX(n, 1))
			return "tensor has too many elements";
		type->dim[i] = t->dims[i];
		n *= t->dims[i];
	}
	size_t nbytes = (size_t)type_bytes(type);
	if (t->has_data_location &&
	    t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
		return read_external(a, t, dir, nbytes, data);
	if (t->has_raw_data || (n > 0 && !read_fields_count(t))) {
		/* checked before memory is taken, so a corrupt header
		 * cannot ask for more than the file holds */
		if (t->raw_data.len != nbytes)
			return arena_printf(a, "tensor has %zu bytes of raw data, its "
			                    "shape needs %zu", t->raw_data.len, nbytes);
		*data = arena_alloc(a, nbytes ? nbytes : 1);
		if (nbytes)     /* an empty tensor's raw_data may be NULL */
			memcpy(*data, t->raw_data.data, nbytes);
		if (dt == DT_BOOL)
			for (size_t i = 0; i < nbytes; i++)
				((uint8_t *)*data)[i] = ((uint8_t *)*data)[i] != 0;
		return NULL;
	}
	return read_fields(a, t, dt, n, data);
}

void
onnx_load_tensor(Arena *a, const char *path, const char **name, Type *t,
                 void **data)
{
	size_t len;
	uint8_t *buf = (uint8_t *)read_file(a, path, &len);
	if (!buf)
		fatal("cannot read '%s': %s", path, strerror(errno));
	check_nesting(path, buf, len, &onnx__tensor_proto__descriptor);
	pb_arena = a;
	Onnx__TensorProto *p = onnx__tensor_proto__unpack(&pb_allocator, len, buf);
	if (!p)
		fatal("%s: not a valid ONNX TensorProto file", path);
	fill_strings(&p->base);
	const char *err = onnx_tensor(a, p, NULL, t, data);
	if (err)
		fatal("%s: %s", path, err);
	*name = p->name ? p->name : "";
}
