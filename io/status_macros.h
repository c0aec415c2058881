// Early returns on errors, for functions returning absl::Status or
// absl::StatusOr<T>.
//
//   KVINDEX_RETURN_IF_ERROR(file->Sync());
//   KVINDEX_ASSIGN_OR_RETURN(std::unique_ptr<File> file, env->OpenFile(...));
//
// Each macro evaluates its expression exactly once.
#ifndef KVINDEX_IO_STATUS_MACROS_H_
#define KVINDEX_IO_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns the absl::Status `expr` from the enclosing function unless it is OK.
#define KVINDEX_RETURN_IF_ERROR(expr)                        \
  do {                                                       \
    const absl::Status kvindex_status_macro_status = (expr); \
    if (!kvindex_status_macro_status.ok()) {                 \
      return kvindex_status_macro_status;                    \
    }                                                        \
  } while (0)

// Evaluates `rexpr`, an absl::StatusOr<T>: returns its status from the
// enclosing function unless it is OK, else moves its value into `lhs` (a
// declaration such as `auto x` or an existing variable). Expands to several
// statements: not for the body of an unbraced if or loop.
#define KVINDEX_ASSIGN_OR_RETURN(lhs, rexpr) \
  KVINDEX_ASSIGN_OR_RETURN_IMPL_(            \
      KVINDEX_STATUS_MACROS_CONCAT_(kvindex_statusor_, __LINE__), lhs, rexpr)

// Implementation details of the macros above.
#define KVINDEX_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();   \
  lhs = *std::move(statusor)
#define KVINDEX_STATUS_MACROS_CONCAT_(a, b) \
  KVINDEX_STATUS_MACROS_CONCAT_INNER_(a, b)
#define KVINDEX_STATUS_MACROS_CONCAT_INNER_(a, b) a##b

#endif  // KVINDEX_IO_STATUS_MACROS_H_
