/* Placeholder until the first source of storage/ lands. */
#include "storage.h"
