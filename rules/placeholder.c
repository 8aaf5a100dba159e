/* Placeholder until the first source of rules/ lands. */
#include "rules.h"
