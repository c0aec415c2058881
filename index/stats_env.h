// StatsEnv: an Env decorator that counts every read and write in Stats.
#ifndef KVINDEX_INDEX_STATS_ENV_H_
#define KVINDEX_INDEX_STATS_ENV_H_

#include <memory>
#include <string>

#include "io/env.h"

namespace kvindex {

// Wraps `base` (not owned).
std::unique_ptr<Env> NewStatsEnv(Env* base);

}  // namespace kvindex

#endif  // KVINDEX_INDEX_STATS_ENV_H_
