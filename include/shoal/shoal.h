// Shoal: a concurrent garbage-collected heap and object-sharing runtime. Umbrella header.
#pragma once

#include "shoal/builtins.h"
#include "shoal/class_table.h"
#include "shoal/errors.h"
#include "shoal/heap.h"
#include "shoal/isolate.h"
#include "shoal/managed.h"
#include "shoal/object.h"
#include "shoal/object_model.h"
#include "shoal/persistent.h"
#include "shoal/ports.h"
#include "shoal/sharing.h"
#include "shoal/value.h"
#include "shoal/weak_ref.h"
#include "shoal/write_barrier.h"
