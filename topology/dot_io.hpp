#pragma once
// GraphViz DOT input and output of cluster topologies (format: docs/topology.md).
//
// Vertices:  name [kind=gpu|nvswitch|nic|leaf|spine|tor, server=N, gpu=K]
//   `server` (alias: the quoted attribute "node", since `node` is a DOT
//   keyword) is the server index; when no GPU has one, servers are inferred as
//   the groups of GPUs joined by nvlink-class links (directly or through an
//   NVSwitch). GPUs are numbered by their `gpu` attribute when every GPU has
//   one (it must then be 0..n-1), otherwise in natural order of their names
//   ("gpu2" before "gpu10"), which Boost's reader gives us instead of file order.
// Edges:     a -> b [bandwidth="450GB/s", latency="100ns", class=nvlink|pcie|nic|fabric]
//   `bandwidth` is required and needs a unit; `latency` (with unit) and `class`
//   are optional (class: inferred from the kinds of both ends; latency: the
//   class default of the presets). A `digraph` edge is one directed link unless
//   it has duplex=true; a `graph` edge (a -- b) is always a duplex link (one
//   link each way). write_dot writes a link and its reverse twin as one
//   `duplex=true, dir=both` edge.

#include <iosfwd>
#include <string>

#include "topology/topology.hpp"

namespace moesim {

/// Writes `t` as a digraph that read_dot reads back to the same topology and
/// `dot -Tpng` can draw.
void write_dot(const Topology& t, std::ostream& out);

/// Reads a topology from a DOT file. Throws InputError naming the file and the
/// node or edge at fault: missing file, syntax error, missing/unknown kind or
/// class, missing, unit-less, zero or negative bandwidth, bad latency, bad
/// server/gpu attributes, no GPU, or a GPU that cannot reach another.
Topology read_dot(const std::string& path);

/// Same from DOT text; `origin` names it in messages.
Topology read_dot_text(const std::string& text, const std::string& origin);

}  // namespace moesim
