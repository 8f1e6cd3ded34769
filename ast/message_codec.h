// Serializing an AST to bytes and back: what isolates without a shared heap must do to
// pass a tree (the benchmark's "isolate serialize" mode; Dart's message snapshots).
//
// The message holds a string table (each String the tree reaches, once, by identity),
// then the objects in reverse pre-order - every object after the objects it refers to -
// each as its class id and payload (kFixed classes: every 8-byte word, references
// re-encoded as string or object indices; RefArray: length and elements; ByteArray:
// length and bytes). The receiver builds the objects bottom-up in its own isolate, with
// fresh strings; deeply immutable instances are built through
// allocate_immutable_instance. Trees only (plus shared strings): an object reached twice
// (a DAG or a cycle) is an InvalidArgument, found during the walk.
//
// A message is trusted to come from serialize_tree in the same process (class ids are
// this process's): deserialize_tree refuses structural damage - truncation, references
// out of range or not pointing backwards, unknown class ids, trailing bytes - with an
// InvalidArgument, but it does not validate a kFixed payload's plain words.
#pragma once

#include <cstdint>
#include <vector>

#include "shoal/shoal.h"

namespace shoal::ast {

// Appends the message for the tree at `root` to `out` (cleared first). The caller must be
// attached and running; serializing does not allocate on the heap.
void serialize_tree(Value root, std::vector<uint8_t>& out);
// Builds the tree a message describes in the calling thread's isolate; returns its root.
// Throws InvalidArgument for a malformed message.
Value deserialize_tree(const uint8_t* data, size_t size);

}  // namespace shoal::ast
