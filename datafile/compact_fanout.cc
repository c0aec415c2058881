#include "datafile/compact_fanout.h"

#include <limits>

namespace kvindex {

CompactFanout CompactFanout::Of(const Fanout& fanout, uint64_t count,
                                size_t entry_size) {
  CompactFanout c;
  // Deviations are only worth their cost for tables that may leave the
  // cache; bits >= 63 cannot occur for an allocated table.
  if (entry_size == 0 || count == 0 || fanout.bits() >= 63) return c;
  c.count_ = count;
  c.bits_ = fanout.bits();
  const size_t n = fanout.nb_fans();
  c.deviations_.resize(n);
  for (size_t b = 0; b < n; ++b) {
    const int64_t deviation =
        static_cast<int64_t>(fanout.slot(b) / entry_size) -
        static_cast<int64_t>(c.Even(b));
    if (deviation < std::numeric_limits<int16_t>::min() ||
        deviation > std::numeric_limits<int16_t>::max()) {
      return CompactFanout();
    }
    c.deviations_[b] = static_cast<int16_t>(deviation);
  }
  return c;
}

}  // namespace kvindex
