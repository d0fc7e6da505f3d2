/* The compliance prefilter's scan, in C: which Hyperscan expressions match a text, as a tuple of ids.
 *
 * The python-hyperscan binding calls a Python function for every match, taking the GIL back and
 * building an argument tuple each time; for the checker's short texts (a hundred bytes, four or
 * five ids each) that costs twice the scan itself. This module compiles the same expressions with
 * the system's libhs (Debian's libvectorscan5 or libhyperscan5, opened with dlopen at import, so
 * the build needs no headers and a machine without the library still imports the module) and
 * collects the ids in C. The GIL stays held for a scan (a microsecond; the match handler is C and
 * runs no Python), so no other thread can use the engine's scratch space or buffers meanwhile.
 *
 * Only the few functions and constants of hs.h used here are declared; they are libhs's stable
 * ABI (hs_common.h, hs_compile.h, hs_runtime.h of Hyperscan 5).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>

typedef struct hs_database hs_database_t;
typedef struct hs_scratch hs_scratch_t;
typedef struct {
    char *message;
    int expression;
} hs_compile_error_t;
typedef int (*match_event_handler)(unsigned int id, unsigned long long from, unsigned long long to,
                                   unsigned int flags, void *context);

#define HS_SUCCESS 0
#define HS_MODE_BLOCK 1

static int (*hs_compile_multi_)(const char *const *, const unsigned int *, const unsigned int *, unsigned int,
                                unsigned int, const void *, hs_database_t **, hs_compile_error_t **);
static int (*hs_free_compile_error_)(hs_compile_error_t *);
static int (*hs_free_database_)(hs_database_t *);
static int (*hs_alloc_scratch_)(const hs_database_t *, hs_scratch_t **);
static int (*hs_free_scratch_)(hs_scratch_t *);
static int (*hs_scan_)(const hs_database_t *, const char *, unsigned int, unsigned int, hs_scratch_t *,
                       match_event_handler, void *);
static const char *(*hs_version_)(void);
static int (*hs_valid_platform_)(void);

static const char *library_version = NULL; /* NULL: no usable libhs here */
static PyObject *CompileError;

static void load_library(void) {
    const char *names[] = {"libhs.so.5", "libhs.so", NULL};
    void *handle = NULL;
    for (int i = 0; names[i] != NULL && handle == NULL; i++) {
        handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    }
    if (handle == NULL) {
        return;
    }
    *(void **)&hs_compile_multi_ = dlsym(handle, "hs_compile_multi");
    *(void **)&hs_free_compile_error_ = dlsym(handle, "hs_free_compile_error");
    *(void **)&hs_free_database_ = dlsym(handle, "hs_free_database");
    *(void **)&hs_alloc_scratch_ = dlsym(handle, "hs_alloc_scratch");
    *(void **)&hs_free_scratch_ = dlsym(handle, "hs_free_scratch");
    *(void **)&hs_scan_ = dlsym(handle, "hs_scan");
    *(void **)&hs_version_ = dlsym(handle, "hs_version");
    *(void **)&hs_valid_platform_ = dlsym(handle, "hs_valid_platform");
    if (!hs_compile_multi_ || !hs_free_compile_error_ || !hs_free_database_ || !hs_alloc_scratch_ ||
        !hs_free_scratch_ || !hs_scan_ || !hs_version_ || !hs_valid_platform_ ||
        hs_valid_platform_() != HS_SUCCESS) {
        dlclose(handle);
        return;
    }
    library_version = hs_version_();
}

#define HS_FLAG_SINGLEMATCH 8
#define HS_NOMEM (-2)

typedef struct {
    PyObject_HEAD
    hs_database_t *database;
    hs_scratch_t *scratch;
    Py_ssize_t expressions; /* how many expressions libhs knows (ids 0 … expressions-1) */
    Py_ssize_t distinct;    /* how many distinct caller ids they have */
    Py_ssize_t *slot;       /* each expression's caller id, as an index into idents */
    PyObject **idents;      /* the distinct caller ids, as the int objects the caller gave */
    Py_ssize_t *hits;       /* a scan's ids so far (indexes into idents), each once */
    unsigned char *seen;    /* which idents this scan has reported (cleared after each scan) */
    Py_ssize_t found;       /* how many hits this scan has */
    int compiling;          /* Engine() is compiling (without the GIL) */
    char *utf8;             /* a scanned text's UTF-8, when it is not ASCII (reused, grown as needed) */
    size_t utf8_room;
} Engine;

static void Engine_clear(Engine *self) {
    if (self->idents != NULL) {
        for (Py_ssize_t i = 0; i < self->distinct; i++) {
            Py_XDECREF(self->idents[i]);
        }
    }
    PyMem_Free(self->idents);
    PyMem_Free(self->slot);
    PyMem_Free(self->hits);
    PyMem_Free(self->seen);
    PyMem_Free(self->utf8);
    self->utf8 = NULL;
    self->utf8_room = 0;
    self->idents = NULL;
    self->slot = NULL;
    self->hits = NULL;
    self->seen = NULL;
    self->expressions = self->distinct = 0;
    if (self->scratch != NULL) {
        hs_free_scratch_(self->scratch);
        self->scratch = NULL;
    }
    if (self->database != NULL) {
        hs_free_database_(self->database);
        self->database = NULL;
    }
}

static void Engine_dealloc(Engine *self) {
    Engine_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* An unsigned int from a Python int, or -1 with OverflowError (negative or over UINT_MAX). */
static int unsigned_int(PyObject *value, unsigned int *out) {
    unsigned long number = PyLong_AsUnsignedLong(value);
    if (number == (unsigned long)-1 && PyErr_Occurred()) {
        return -1;
    }
    if (number > 0xffffffffUL) {
        PyErr_SetString(PyExc_OverflowError, "a flag does not fit in 32 bits");
        return -1;
    }
    *out = (unsigned int)number;
    return 0;
}

/* Engine(expressions, flags, ids): one block-mode database of UTF-8 expressions. Each expression
 * is compiled with HS_FLAG_SINGLEMATCH whatever its flags say, and a scan gives each distinct id
 * once (two expressions may share an id: either matching reports it). */
static int Engine_init(Engine *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"expressions", "flags", "ids", NULL};
    PyObject *expressions, *flags, *ids;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO", keywords, &expressions, &flags, &ids)) {
        return -1;
    }
    if (library_version == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "no usable libhs (libhs.so.5) on this machine");
        return -1;
    }
    if (self->database != NULL || self->compiling) {
        PyErr_SetString(PyExc_RuntimeError, "an engine is compiled once");
        return -1;
    }
    Engine_clear(self); /* what a failed earlier call left */
    self->compiling = 1;
    /* tuples: the compile runs without the GIL, and a tuple's bytes objects cannot go meanwhile */
    PyObject *expression_tuple = PySequence_Tuple(expressions);
    PyObject *flag_list = expression_tuple ? PySequence_Fast(flags, "flags must be a sequence of int") : NULL;
    PyObject *id_list = flag_list ? PySequence_Fast(ids, "ids must be a sequence of int") : NULL;
    PyObject *slots = id_list ? PyDict_New() : NULL; /* caller id -> its index in idents */
    int result = -1;
    const char **sources = NULL;
    unsigned int *flag_values = NULL, *id_values = NULL;
    if (slots == NULL) {
        goto done;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(expression_tuple);
    if (count == 0 || PySequence_Fast_GET_SIZE(flag_list) != count || PySequence_Fast_GET_SIZE(id_list) != count) {
        PyErr_SetString(PyExc_ValueError, "expressions, flags and ids must be non-empty and of one length");
        goto done;
    }
    sources = PyMem_Calloc((size_t)count, sizeof(char *));
    flag_values = PyMem_Calloc((size_t)count, sizeof(unsigned int));
    id_values = PyMem_Calloc((size_t)count, sizeof(unsigned int));
    self->slot = PyMem_Calloc((size_t)count, sizeof(Py_ssize_t));
    self->idents = PyMem_Calloc((size_t)count, sizeof(PyObject *));
    self->hits = PyMem_Calloc((size_t)count, sizeof(Py_ssize_t));
    self->seen = PyMem_Calloc((size_t)count, 1);
    if (!sources || !flag_values || !id_values || !self->slot || !self->idents || !self->hits || !self->seen) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *source = PyTuple_GET_ITEM(expression_tuple, i);
        PyObject *ident = PySequence_Fast_GET_ITEM(id_list, i);
        if (!PyBytes_Check(source) || !PyLong_Check(ident)) {
            PyErr_Format(PyExc_TypeError, "expression %zd is not bytes or its id not an int", i);
            goto done;
        }
        if (unsigned_int(PySequence_Fast_GET_ITEM(flag_list, i), &flag_values[i]) < 0) {
            goto done;
        }
        sources[i] = PyBytes_AS_STRING(source);
        flag_values[i] |= HS_FLAG_SINGLEMATCH;
        id_values[i] = (unsigned int)i;
        PyObject *known = PyDict_GetItemWithError(slots, ident);
        if (known != NULL) {
            self->slot[i] = PyLong_AsSsize_t(known);
            continue;
        }
        if (PyErr_Occurred()) {
            goto done;
        }
        PyObject *place = PyLong_FromSsize_t(self->distinct);
        if (place == NULL || PyDict_SetItem(slots, ident, place) < 0) {
            Py_XDECREF(place);
            goto done;
        }
        Py_DECREF(place);
        Py_INCREF(ident);
        self->idents[self->distinct] = ident;
        self->slot[i] = self->distinct++;
    }
    self->expressions = count;
    hs_database_t *database = NULL;
    hs_compile_error_t *error = NULL;
    int status;
    Py_BEGIN_ALLOW_THREADS
    status = hs_compile_multi_(sources, flag_values, id_values, (unsigned int)count, HS_MODE_BLOCK, NULL,
                               &database, &error);
    Py_END_ALLOW_THREADS
    if (status != HS_SUCCESS) {
        PyObject *exception = error != NULL
            ? Py_BuildValue("(si)", error->message, error->expression)
            : Py_BuildValue("(si)", "the expressions could not be compiled", -1);
        if (error != NULL) {
            hs_free_compile_error_(error);
        }
        if (exception != NULL) {
            PyErr_SetObject(CompileError, exception);
            Py_DECREF(exception);
        }
        goto done;
    }
    self->database = database;
    status = hs_alloc_scratch_(database, &self->scratch);
    if (status != HS_SUCCESS) {
        if (status == HS_NOMEM) {
            PyErr_NoMemory();
        } else {
            PyErr_Format(PyExc_RuntimeError, "hs_alloc_scratch failed (%d)", status);
        }
        goto done;
    }
    result = 0;
done:
    if (result < 0) {
        Engine_clear(self);
    }
    self->compiling = 0;
    PyMem_Free(sources);
    PyMem_Free(flag_values);
    PyMem_Free(id_values);
    Py_XDECREF(expression_tuple);
    Py_XDECREF(flag_list);
    Py_XDECREF(id_list);
    Py_XDECREF(slots);
    return result;
}

static int collect(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
                   void *context) {
    (void)from, (void)to, (void)flags;
    Engine *self = (Engine *)context;
    Py_ssize_t slot = self->slot[id]; /* id < expressions: libhs reports only the ids it was given */
    if (!self->seen[slot]) {
        self->seen[slot] = 1;
        self->hits[self->found++] = slot; /* at most distinct hits: each slot once */
    }
    return 0;
}

/* The text's UTF-8 in the engine's buffer; its length, or -1 when the text holds a surrogate (no
 * UTF-8: the caller lets CPython's encoder raise the error) or with MemoryError. */
static Py_ssize_t encode(Engine *self, PyObject *text) {
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    size_t room = (size_t)length * 4 + 1;
    if (room > self->utf8_room) {
        char *grown = PyMem_Realloc(self->utf8, room);
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->utf8 = grown;
        self->utf8_room = room;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    unsigned char *out = (unsigned char *)self->utf8;
    for (Py_ssize_t i = 0; i < length; i++) {
        Py_UCS4 code = PyUnicode_READ(kind, data, i);
        if (code < 0x80) {
            *out++ = (unsigned char)code;
        } else if (code < 0x800) {
            *out++ = (unsigned char)(0xc0 | (code >> 6));
            *out++ = (unsigned char)(0x80 | (code & 0x3f));
        } else if (code < 0x10000) {
            if (code >= 0xd800 && code <= 0xdfff) {
                return -1;
            }
            *out++ = (unsigned char)(0xe0 | (code >> 12));
            *out++ = (unsigned char)(0x80 | ((code >> 6) & 0x3f));
            *out++ = (unsigned char)(0x80 | (code & 0x3f));
        } else {
            *out++ = (unsigned char)(0xf0 | (code >> 18));
            *out++ = (unsigned char)(0x80 | ((code >> 12) & 0x3f));
            *out++ = (unsigned char)(0x80 | ((code >> 6) & 0x3f));
            *out++ = (unsigned char)(0x80 | (code & 0x3f));
        }
    }
    return (Py_ssize_t)(out - (unsigned char *)self->utf8);
}

/* engine.scan(text) -> tuple[int, ...]: the distinct ids of the expressions that match the text's
 * UTF-8, in the order libhs first reported them. */
static PyObject *Engine_scan(Engine *self, PyObject *text) {
    if (self->database == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the engine is not compiled");
        return NULL;
    }
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "scan() takes a str");
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0) {
        return NULL;
    }
#endif
    /* ASCII text is its own UTF-8; other text is encoded into the engine's buffer (CPython's cached
     * UTF-8 copy would stay with every string scanned) */
    const char *data;
    Py_ssize_t length;
    if (PyUnicode_IS_COMPACT_ASCII(text)) {
        data = (const char *)PyUnicode_DATA(text);
        length = PyUnicode_GET_LENGTH(text);
    } else {
        if (PyUnicode_GET_LENGTH(text) > PY_SSIZE_T_MAX / 4 - 1) {
            return PyErr_NoMemory();
        }
        length = encode(self, text);
        if (length < 0) {
            if (!PyErr_Occurred()) { /* a surrogate: CPython's encoder says so in its words */
                PyObject *encoded = PyUnicode_AsUTF8String(text);
                Py_XDECREF(encoded);
                if (!PyErr_Occurred()) {
                    PyErr_SetString(PyExc_ValueError, "the text has no UTF-8");
                }
            }
            return NULL;
        }
        data = self->utf8;
    }
    if (length > (Py_ssize_t)0xffffffffu) {
        PyErr_SetString(PyExc_ValueError, "the text is longer than a Hyperscan block (4 GiB)");
        return NULL;
    }
    self->found = 0;
    int status = hs_scan_(self->database, data, (unsigned int)length, 0, self->scratch, collect, self);
    PyObject *found = NULL;
    if (status != HS_SUCCESS) {
        PyErr_Format(PyExc_RuntimeError, "hs_scan failed (%d)", status);
    } else if ((found = PyTuple_New(self->found)) != NULL) {
        for (Py_ssize_t i = 0; i < self->found; i++) {
            PyObject *ident = self->idents[self->hits[i]];
            Py_INCREF(ident);
            PyTuple_SET_ITEM(found, i, ident);
        }
    }
    for (Py_ssize_t i = 0; i < self->found; i++) {
        self->seen[self->hits[i]] = 0;
    }
    self->found = 0;
    return found;
}

static PyMethodDef Engine_methods[] = {
    {"scan", (PyCFunction)Engine_scan, METH_O, "The distinct ids of the expressions that match the text."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EngineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "closeloop.assistant.compliance._hsscan.Engine",
    .tp_doc = "Engine(expressions, flags, ids): a Hyperscan block database and its scratch space.",
    .tp_basicsize = sizeof(Engine),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Engine_init,
    .tp_dealloc = (destructor)Engine_dealloc,
    .tp_methods = Engine_methods,
};

/* version() -> str | None: the libhs this module uses, or None when there is none. */
static PyObject *version(PyObject *module, PyObject *unused) {
    (void)module, (void)unused;
    if (library_version == NULL) {
        Py_RETURN_NONE;
    }
    return PyUnicode_FromString(library_version);
}

static PyMethodDef module_methods[] = {
    {"version", version, METH_NOARGS, "The version of the libhs in use, or None when none could be loaded."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "_hsscan", "The compliance prefilter's scan with the system's libhs.", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__hsscan(void) {
    if (PyType_Ready(&EngineType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_definition);
    if (module == NULL) {
        return NULL;
    }
    CompileError = PyErr_NewExceptionWithDoc("closeloop.assistant.compliance._hsscan.CompileError",
                                             "An expression libhs cannot compile: (message, expression index).",
                                             PyExc_ValueError, NULL);
    if (CompileError == NULL || PyModule_AddObjectRef(module, "CompileError", CompileError) < 0 ||
        PyModule_AddObjectRef(module, "Engine", (PyObject *)&EngineType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    load_library();
    return module;
}
