/* Placeholder until the first source of layers/ lands. */
#include "layers.h"
