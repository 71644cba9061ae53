#ifndef TESSERA_CDQLITE_SHIM_H
#define TESSERA_CDQLITE_SHIM_H
#include <dqlite.h>
#endif
