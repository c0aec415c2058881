"""The benchmark's peers: Debian's LMDB, LevelDB and RocksDB as system repositories.

Only //bench depends on these; the library (//index and below) never does, so a
consumer that only builds the library does not need the packages installed (Bazel
fetches a repository only when a target that needs it is built).

WORKSPACE usage (after kvindex_deps()):
    load("@kvindex//bazel:peers.bzl", "kvindex_bench_deps")
    kvindex_bench_deps()

  @lmdb//:lmdb         liblmdb-dev      #include <lmdb.h>
  @leveldb//:leveldb   libleveldb-dev   #include <leveldb/db.h>
  @rocksdb//:rocksdb   librocksdb-dev   #include <rocksdb/db.h>

Each is declared only if the WORKSPACE has not declared it already (so a source build
of the peer can be swapped in under the same name).
"""

load(":system_libs.bzl", "system_repo")

_LIBDIR = "/usr/lib/x86_64-linux-gnu"

def _maybe(repo_rule, name, **kwargs):
    if not native.existing_rule(name):
        repo_rule(name = name, **kwargs)

def kvindex_bench_deps():
    """Declares @lmdb, @leveldb and @rocksdb from Debian's -dev packages."""
    _maybe(
        system_repo,
        "lmdb",
        build_file = Label("//bazel/system:lmdb.BUILD"),
        required_files = ["/usr/include/lmdb.h", _LIBDIR + "/liblmdb.so"],
        apt_packages = "liblmdb-dev",
    )
    _maybe(
        system_repo,
        "leveldb",
        build_file = Label("//bazel/system:leveldb.BUILD"),
        required_files = ["/usr/include/leveldb/db.h", _LIBDIR + "/libleveldb.so"],
        apt_packages = "libleveldb-dev",
    )
    _maybe(
        system_repo,
        "rocksdb",
        build_file = Label("//bazel/system:rocksdb.BUILD"),
        required_files = ["/usr/include/rocksdb/db.h", _LIBDIR + "/librocksdb.so"],
        apt_packages = "librocksdb-dev",
    )
