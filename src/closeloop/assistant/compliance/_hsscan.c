/* The compliance prefilter's scan, in C: which Hyperscan expressions match a text, as a set of ids.
 *
 * The python-hyperscan binding calls a Python function for every match, taking the GIL back and
 * building an argument tuple each time; for the checker's short texts (a hundred bytes, four or
 * five ids each) that costs twice the scan itself. This module compiles the same expressions with
 * the system's libhs (Debian's libvectorscan5 or libhyperscan5, opened with dlopen at import, so
 * the build needs no headers and a machine without the library still imports the module) and
 * collects the ids in C. The GIL stays held: a scan is a microsecond, and nothing else can use the
 * engine's scratch space meanwhile (a nested use clones it).
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
static int (*hs_clone_scratch_)(const hs_scratch_t *, hs_scratch_t **);
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
    *(void **)&hs_clone_scratch_ = dlsym(handle, "hs_clone_scratch");
    *(void **)&hs_free_scratch_ = dlsym(handle, "hs_free_scratch");
    *(void **)&hs_scan_ = dlsym(handle, "hs_scan");
    *(void **)&hs_version_ = dlsym(handle, "hs_version");
    *(void **)&hs_valid_platform_ = dlsym(handle, "hs_valid_platform");
    if (!hs_compile_multi_ || !hs_free_compile_error_ || !hs_free_database_ || !hs_alloc_scratch_ ||
        !hs_clone_scratch_ || !hs_free_scratch_ || !hs_scan_ || !hs_version_ || !hs_valid_platform_ ||
        hs_valid_platform_() != HS_SUCCESS) {
        dlclose(handle);
        return;
    }
    library_version = hs_version_();
}

typedef struct {
    PyObject_HEAD
    hs_database_t *database;
    hs_scratch_t *scratch;
    int busy;
    Py_ssize_t count;
    PyObject **idents; /* the caller's id of each expression, as int objects (libhs sees 0 … count-1) */
    unsigned int *hits; /* a scan's reports (each expression at most once: HS_FLAG_SINGLEMATCH) */
} Engine;

static void Engine_dealloc(Engine *self) {
    if (self->idents != NULL) {
        for (Py_ssize_t i = 0; i < self->count; i++) {
            Py_XDECREF(self->idents[i]);
        }
        PyMem_Free(self->idents);
    }
    PyMem_Free(self->hits);
    if (self->scratch != NULL) {
        hs_free_scratch_(self->scratch);
    }
    if (self->database != NULL) {
        hs_free_database_(self->database);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Engine(expressions, flags, ids): one block-mode database of UTF-8 expressions, each compiled with
 * HS_FLAG_SINGLEMATCH (the scan keeps one report per expression). */
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
    if (self->database != NULL || self->idents != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "an engine is compiled once");
        return -1;
    }
    PyObject *expression_list = PySequence_Fast(expressions, "expressions must be a sequence of bytes");
    PyObject *flag_list = expression_list ? PySequence_Fast(flags, "flags must be a sequence of int") : NULL;
    PyObject *id_list = flag_list ? PySequence_Fast(ids, "ids must be a sequence of int") : NULL;
    int result = -1;
    const char **sources = NULL;
    unsigned int *flag_values = NULL, *id_values = NULL;
    if (id_list == NULL) {
        goto done;
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(expression_list);
    if (count == 0 || PySequence_Fast_GET_SIZE(flag_list) != count || PySequence_Fast_GET_SIZE(id_list) != count) {
        PyErr_SetString(PyExc_ValueError, "expressions, flags and ids must be non-empty and of one length");
        goto done;
    }
    sources = PyMem_Calloc((size_t)count, sizeof(char *));
    flag_values = PyMem_Calloc((size_t)count, sizeof(unsigned int));
    id_values = PyMem_Calloc((size_t)count, sizeof(unsigned int));
    self->idents = PyMem_Calloc((size_t)count, sizeof(PyObject *));
    self->hits = PyMem_Calloc((size_t)count, sizeof(unsigned int));
    if (sources == NULL || flag_values == NULL || id_values == NULL || self->idents == NULL || self->hits == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    self->count = count;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *source = PySequence_Fast_GET_ITEM(expression_list, i);
        PyObject *ident = PySequence_Fast_GET_ITEM(id_list, i);
        if (!PyBytes_Check(source) || !PyLong_Check(ident)) {
            PyErr_Format(PyExc_TypeError, "expression %zd is not bytes or its id not an int", i);
            goto done;
        }
        sources[i] = PyBytes_AS_STRING(source);
        flag_values[i] = (unsigned int)PyLong_AsUnsignedLong(PySequence_Fast_GET_ITEM(flag_list, i));
        id_values[i] = (unsigned int)i;
        if (PyErr_Occurred()) {
            goto done;
        }
        Py_INCREF(ident);
        self->idents[i] = ident;
    }
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
    if (hs_alloc_scratch_(database, &self->scratch) != HS_SUCCESS) {
        hs_free_database_(database);
        PyErr_NoMemory();
        goto done;
    }
    self->database = database;
    result = 0;
done:
    PyMem_Free(sources);
    PyMem_Free(flag_values);
    PyMem_Free(id_values);
    Py_XDECREF(expression_list);
    Py_XDECREF(flag_list);
    Py_XDECREF(id_list);
    return result;
}

typedef struct {
    unsigned int *hits;
    Py_ssize_t found, room;
} Collected;

static int collect(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
                   void *context) {
    (void)from, (void)to, (void)flags;
    Collected *collected = (Collected *)context;
    if (collected->found == collected->room) {
        return 1; /* more reports than expressions: not compiled with HS_FLAG_SINGLEMATCH; stop */
    }
    collected->hits[collected->found++] = id;
    return 0;
}

/* engine.scan(text) -> tuple[int, ...]: the ids of the expressions that match the text's UTF-8,
 * each once, in the order libhs reported them. */
static PyObject *Engine_scan(Engine *self, PyObject *text) {
    if (self->database == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the engine is not compiled");
        return NULL;
    }
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "scan() takes a str");
        return NULL;
    }
    Py_ssize_t length;
    const char *data = PyUnicode_AsUTF8AndSize(text, &length);
    if (data == NULL) {
        return NULL;
    }
    if (length > (Py_ssize_t)0xffffffffu) {
        PyErr_SetString(PyExc_ValueError, "the text is longer than a Hyperscan block (4 GiB)");
        return NULL;
    }
    Collected collected = {self->hits, 0, self->count};
    hs_scratch_t *scratch = self->scratch, *cloned = NULL;
    if (self->busy) { /* used again before a scan ended (another thread, in principle): its own buffers */
        collected.hits = PyMem_Calloc((size_t)self->count, sizeof(unsigned int));
        if (collected.hits == NULL || hs_clone_scratch_(self->scratch, &cloned) != HS_SUCCESS) {
            PyMem_Free(collected.hits);
            return PyErr_NoMemory();
        }
        scratch = cloned;
    }
    self->busy += 1;
    int status = hs_scan_(self->database, data, (unsigned int)length, 0, scratch, collect, &collected);
    self->busy -= 1;
    if (cloned != NULL) {
        hs_free_scratch_(cloned);
    }
    PyObject *found = NULL;
    if (status != HS_SUCCESS) {
        PyErr_Format(PyExc_RuntimeError, "hs_scan failed (%d)", status);
    } else if ((found = PyTuple_New(collected.found)) != NULL) {
        for (Py_ssize_t i = 0; i < collected.found; i++) {
            PyObject *ident = self->idents[collected.hits[i]];
            Py_INCREF(ident);
            PyTuple_SET_ITEM(found, i, ident);
        }
    }
    if (collected.hits != self->hits) {
        PyMem_Free(collected.hits);
    }
    return found;
}

static PyMethodDef Engine_methods[] = {
    {"scan", (PyCFunction)Engine_scan, METH_O, "The ids of the expressions that match the text, each once."},
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
