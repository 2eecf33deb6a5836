"""Prints the state of a directory, one line per entry, sorted: a file's
name, size and SHA-256, a link's name and target, a directory's name with
a '/'.  Two states compared with diff show any file created, changed or
removed, and any temporary file left behind.

usage: dirstate.py DIR"""
import hashlib
import os
import stat
import sys

top = sys.argv[1]
for name in sorted(os.listdir(top)):
    path = os.path.join(top, name)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        print('%s -> %s' % (name, os.readlink(path)))
    elif stat.S_ISDIR(st.st_mode):
        print('%s/' % name)
    else:
        digest = hashlib.sha256(open(path, 'rb').read()).hexdigest()
        print('%s %d %s' % (name, st.st_size, digest))
