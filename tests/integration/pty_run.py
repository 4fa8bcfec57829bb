#!/usr/bin/env python3
"""Run a command with its stderr (and with --stdout-tty its stdout too) on a
pseudo-terminal, and describe what a terminal would have shown, as JSON:

  rc         the exit status
  elapsed    seconds from start to exit
  draws      the progress lines drawn: every text after a carriage return
             that starts with "gitwal " and is not ended by a newline
  rendered   the terminal's lines once the command ended (each line as
             finally shown, trailing spaces removed): output lines only, if
             the progress line was erased before each of them
  tail       what is left on the last, unfinished line (empty when the
             progress line was erased at the end)
  stdout     the command's stdout when it was not on the terminal

usage: pty_run.py [--stdout-tty] [--cols N] -- CMD...
"""
import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time


def render(data):
    """A minimal terminal: '\\r' returns to column 0, '\\n' ends the line, text overwrites."""
    lines, cur, col = [], [], 0
    for ch in data:
        if ch == "\r":
            col = 0
        elif ch == "\n":
            lines.append("".join(cur).rstrip(" "))
            cur, col = [], 0
        else:
            if col < len(cur):
                cur[col] = ch
            else:
                cur.append(ch)
            col += 1
    return lines, "".join(cur).rstrip(" ")


def draws(data):
    """Progress redraws: a carriage return, then text never ended by a newline (output lines end with one)."""
    return [m.group(1).rstrip(" ") for m in re.finditer(r"\r(gitwal [^\r\n]*)(?=\r(?!\n)|$)", data)]


def main():
    args = sys.argv[1:]
    stdout_tty, cols = False, 200
    while args and args[0] != "--":
        if args[0] == "--stdout-tty":
            stdout_tty = True
            args = args[1:]
        elif args[0] == "--cols":
            cols = int(args[1])
            args = args[2:]
        else:
            sys.exit("usage: pty_run.py [--stdout-tty] [--cols N] -- CMD...")
    cmd = args[1:]
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, cols, 0, 0))
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave if stdout_tty else subprocess.PIPE,
                            stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    stdout = b""
    if not stdout_tty:
        # Read stdout on its own so a full pipe never stalls the command.
        import threading

        def drain():
            nonlocal stdout
            stdout = proc.stdout.read()
        reader = threading.Thread(target=drain)
        reader.start()
    while True:
        try:
            b = os.read(master, 65536)
        except OSError:  # EIO: every writer of the terminal has closed it
            break
        if not b:
            break
        chunks.append(b)
    rc = proc.wait()
    elapsed = time.monotonic() - start
    if not stdout_tty:
        reader.join()
    os.close(master)
    data = b"".join(chunks).decode("utf-8", "replace")
    lines, tail = render(data)
    json.dump({"rc": rc, "elapsed": elapsed, "draws": draws(data), "rendered": lines, "tail": tail,
               "stdout": stdout.decode("utf-8", "replace"), "raw": data}, sys.stdout)


if __name__ == "__main__":
    main()
