// FlushOptions: how a flush writes the records buffered for a log file
// (IndexFile::Flush, Log::Flush, RawIndex::Flush). Part of the public API,
// which index/raw_index.h re-exports; the field names are those of the OCaml
// library's `flush ?no_callback ?with_fsync`.
//
// Set the fields by name, e.g.
//   index->Flush(FlushOptions{.no_callback = true, .with_fsync = true});
// The default flush calls the flush callback and does not fsync.
#ifndef KVINDEX_IO_FLUSH_OPTIONS_H_
#define KVINDEX_IO_FLUSH_OPTIONS_H_

namespace kvindex {

struct FlushOptions {
  // Do not call the flush callback before writing the records.
  bool no_callback = false;
  // fsync the file after writing: what was appended before is then durable.
  bool with_fsync = false;
};

}  // namespace kvindex

#endif  // KVINDEX_IO_FLUSH_OPTIONS_H_
