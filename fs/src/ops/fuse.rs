//! The `fuser::Filesystem` implementation: unpacks each request, calls the matching
//! operation of [`AspenFs`] and sends the reply. No logic of its own beyond that.

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, BsdFileFlags, Errno, FileAttr, FileHandle, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, IoctlFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl,
    ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use super::dir::DirSink;
use super::entry::{Creator, SetAttr};
use super::AspenFs;
use crate::backend::DeleteKind;
use crate::xattr::Answer;

/// Inode numbers are never reused within a mount, so one generation suffices.
const GENERATION: Generation = Generation(0);

fn trace_err(op: &str, e: Errno) -> Errno {
    tracing::trace!(op, errno = e.code(), "request failed");
    e
}

fn creator(req: &Request, mode: u32, umask: u32) -> Creator {
    Creator {
        uid: req.uid(),
        gid: req.gid(),
        mode: mode & !umask & 0o7777,
    }
}

struct Plain<'a>(&'a mut ReplyDirectory);

impl DirSink for Plain<'_> {
    fn plus(&self) -> bool {
        false
    }

    fn add(&mut self, name: &str, offset: u64, attr: &FileAttr, _ttl: Duration) -> bool {
        self.0.add(attr.ino, offset, attr.kind, name)
    }
}

struct Plus<'a>(&'a mut ReplyDirectoryPlus);

impl DirSink for Plus<'_> {
    fn plus(&self) -> bool {
        true
    }

    fn add(&mut self, name: &str, offset: u64, attr: &FileAttr, ttl: Duration) -> bool {
        self.0.add(attr.ino, offset, name, &ttl, attr, GENERATION)
    }
}

impl AspenFs {
    fn reply_entry(&self, reply: ReplyEntry, result: Result<FileAttr, Errno>, op: &str) {
        match result {
            Ok(a) => reply.entry_with_ttls(
                &self.settings.attr_ttl,
                &self.settings.entry_ttl,
                &a,
                GENERATION,
            ),
            Err(e) => reply.error(trace_err(op, e)),
        }
    }

    fn reply_empty(reply: ReplyEmpty, result: Result<(), Errno>, op: &str) {
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(trace_err(op, e)),
        }
    }

    fn reply_xattr(reply: ReplyXattr, result: Result<Answer, Errno>, op: &str) {
        match result {
            Ok(Answer::Size(n)) => reply.size(n),
            Ok(Answer::Data(d)) => reply.data(&d),
            Err(e) => reply.error(trace_err(op, e)),
        }
    }
}

impl Filesystem for AspenFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        let wanted = [
            // Listings carry attributes, saving a lookup per entry.
            InitFlags::FUSE_DO_READDIRPLUS | InitFlags::FUSE_READDIRPLUS_AUTO,
            // O_TRUNC arrives with open: one put at close instead of a truncate first.
            InitFlags::FUSE_ATOMIC_O_TRUNC,
            // Lookups and listings in one directory may run in parallel.
            InitFlags::FUSE_PARALLEL_DIROPS,
            // Files use direct I/O (see `KV_OPEN_FLAGS`); shared mmap of them too.
            InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP,
        ];
        for flags in wanted {
            if let Err(missing) = config.add_capabilities(flags) {
                tracing::info!(?missing, "kernel lacks a FUSE capability");
            }
        }
        Ok(())
    }

    fn destroy(&mut self) {
        // The kernel releases every file before unmounting; anything still open here
        // was cut off (aborted connection). Try to keep its writes.
        if let Ok(files) = self.handles.all_files() {
            for h in files {
                if h.is_dirty().unwrap_or(false) && !h.failed().unwrap_or(true) {
                    if let Err(e) = self.commit(&h) {
                        tracing::error!(ino = h.ino, errno = e.code(), "writes lost at unmount");
                    }
                }
            }
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.do_lookup(parent.0, name) {
            // A zero TTL (for /cluster files) applies to both caches.
            Ok((a, ttl)) if ttl.is_zero() => reply.entry_with_ttls(&ttl, &ttl, &a, GENERATION),
            Ok((a, _)) => reply.entry_with_ttls(
                &self.settings.attr_ttl,
                &self.settings.entry_ttl,
                &a,
                GENERATION,
            ),
            Err(e) => reply.error(trace_err("lookup", e)),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        if let Err(e) = self.inodes.forget(ino.0, nlookup) {
            tracing::warn!(ino = ino.0, errno = e.code(), "forget failed");
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.do_getattr(ino.0) {
            Ok((a, ttl)) => reply.attr(&ttl, &a),
            Err(e) => reply.error(trace_err("getattr", e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let s = SetAttr {
            mode,
            uid,
            gid,
            size,
            mtime,
            fh: fh.map(|f| f.0),
        };
        match self.do_setattr(ino.0, s) {
            Ok((a, ttl)) => reply.attr(&ttl, &a),
            Err(e) => reply.error(trace_err("setattr", e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.do_readlink(ino.0) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(trace_err("readlink", e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let r = self.do_mknod(parent.0, name, mode, rdev, creator(req, mode, umask));
        self.reply_entry(reply, r, "mknod");
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let r = self.do_mkdir(parent.0, name, creator(req, mode, umask));
        self.reply_entry(reply, r, "mkdir");
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        Self::reply_empty(
            reply,
            self.do_remove(parent.0, name, DeleteKind::NonDir),
            "unlink",
        );
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        Self::reply_empty(
            reply,
            self.do_remove(parent.0, name, DeleteKind::EmptyDir),
            "rmdir",
        );
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let r = self.do_symlink(parent.0, link_name, target, creator(req, 0o777, 0));
        self.reply_entry(reply, r, "symlink");
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let r = self.do_rename(parent.0, name, newparent.0, newname, flags);
        Self::reply_empty(reply, r, "rename");
    }

    /// Aspen has no hard links: a key names exactly one entry, and an entry has
    /// exactly one key. EPERM is POSIX's answer for a file system without links.
    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EPERM);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.do_open(ino.0, flags.0) {
            Ok((fh, fl)) => reply.opened(FileHandle(fh), fl),
            Err(e) => reply.error(trace_err("open", e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.do_read(fh.0, offset, size) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(trace_err("read", e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.do_write(fh.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(trace_err("write", e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        Self::reply_empty(reply, self.do_flush(fh.0), "flush");
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        Self::reply_empty(reply, self.do_release(fh.0), "release");
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        Self::reply_empty(reply, self.do_fsync(fh.0), "fsync");
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.do_opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(trace_err("opendir", e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.do_readdir(ino.0, fh.0, offset, &mut Plain(&mut reply)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(trace_err("readdir", e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        match self.do_readdir(ino.0, fh.0, offset, &mut Plus(&mut reply)) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(trace_err("readdirplus", e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        Self::reply_empty(reply, self.do_releasedir(fh.0), "releasedir");
    }

    /// Directory changes are committed by the operation that makes them.
    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.do_statfs() {
            Ok(s) => reply.statfs(
                s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
            ),
            Err(e) => reply.error(trace_err("statfs", e)),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        position: u32,
        reply: ReplyEmpty,
    ) {
        Self::reply_empty(
            reply,
            self.do_setxattr(ino.0, name, value, flags, position),
            "setxattr",
        );
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        Self::reply_xattr(reply, self.do_getxattr(ino.0, name, size), "getxattr");
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        Self::reply_xattr(reply, self.do_listxattr(ino.0, size), "listxattr");
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        Self::reply_empty(reply, self.do_removexattr(ino.0, name), "removexattr");
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        Self::reply_empty(
            reply,
            self.do_access(ino.0, mask.bits(), req.uid(), req.gid()),
            "access",
        );
    }

    /// No ioctls (tools probe some, e.g. FS_IOC_GETFLAGS): answered quietly.
    fn ioctl(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        _cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        reply.error(Errno::ENOTTY);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self.do_create(parent.0, name, flags, creator(req, mode, umask)) {
            Ok((a, fh, fl, ttl)) => reply.created(&ttl, &a, GENERATION, FileHandle(fh), fl),
            Err(e) => reply.error(trace_err("create", e)),
        }
    }
}
