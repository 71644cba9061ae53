#ifndef TESSERA_CAIO_SHIM_H
#define TESSERA_CAIO_SHIM_H
#include <libaio.h>
#endif
