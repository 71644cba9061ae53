// Only the header matters: this file makes CFuzzer a C target SwiftPM builds.
#include "CFuzzer.h"
