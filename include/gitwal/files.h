/*
 * A repository's files beside refs and objects: config, description,
 * info/attributes and custom_hooks/ (Gitaly's per-repository hooks). Read
 * from a live repository without following links, carried in a full
 * backup's manifest ("files", DESIGN.md 4.5), parsed as untrusted input and
 * written back into a restore's scratch directory without ever resolving a
 * path through a link, so nothing lands outside it.
 */
#ifndef GITWAL_FILES_H
#define GITWAL_FILES_H

#include <stddef.h>
#include <stdint.h>

struct json_t;

/* Bounds, on reading a repository and on parsing alike (DESIGN.md 4.5). */
#define GW_FILES_MAX_FILE (1u << 20)   /* one file's bytes, or one link's target */
#define GW_FILES_MAX_TOTAL (16u << 20) /* all of them */
#define GW_FILES_MAX_ENTRIES 10000
#define GW_FILES_MAX_PATH 1024
#define GW_FILES_MAX_DEPTH 32
#define GW_FILES_MAX_REASON 200 /* a skipped entry's reason, in bytes */

/*
 * GW_FILE_SKIPPED: a path gitwal found but cannot keep (a fifo, a file above
 * the bounds, unreadable...): recorded with why, so the backup goes on and
 * restore names it instead of restoring it. Nothing below it is listed.
 */
typedef enum { GW_FILE_REGULAR = 1, GW_FILE_DIR, GW_FILE_LINK, GW_FILE_SKIPPED } gw_file_type;

typedef struct gw_file {
	char *path;          /* relative to the repository, checked by gw_files_path_check */
	gw_file_type type;
	unsigned mode;       /* permission bits (& 0777) of a file or directory; 0 for a link or a skipped path */
	/*
	 * A file's bytes, a link's target, or a skipped path's reason (printable
	 * text, NUL-terminated beyond size); NULL for a directory.
	 */
	unsigned char *data;
	size_t size;
} gw_file;

typedef struct gw_files {
	gw_file *items; /* sorted by path, unique */
	size_t n, cap;
} gw_files;

/* NULL when path may be stored and restored, else why not (a phrase: "is absolute"). */
const char *gw_files_path_check(const char *path);
/*
 * The files of the repository at repo (rel names it in errors), sorted; none
 * there is an empty set. A path gitwal cannot keep is a GW_FILE_SKIPPED
 * entry, never an error: 0 then too. GW_EIO (named in the last error) when
 * the repository's directory itself cannot be read: *out still holds what
 * could be seen (each path lstat refused, skipped), which a full backup
 * records; the archiver keeps the set it archived last instead. GW_ERROR:
 * out of memory (*out empty).
 */
int gw_files_collect(gw_files *out, const char *repo, const char *rel);
/* How many entries of f are skipped paths. */
size_t gw_files_nskipped(const gw_files *f);
/* A copy of f's skipped entries (path and reason) into out, sorted as in f. */
int gw_files_copy_skipped(const gw_files *f, gw_files *out);
/* The manifest's "files" array (a new reference). */
int gw_files_to_json(const gw_files *f, struct json_t **out);
/*
 * The SHA-256 (64 lowercase hex) of the set's canonical text: the compact
 * dump of gw_files_to_json. Equal sets have equal digests, so the archiver
 * compares a live set with the archived one by this alone (DESIGN.md 4.5).
 */
int gw_files_digest(const gw_files *f, char hex[65]);
/*
 * Parse and check an array made by gw_files_to_json; what names its source
 * in errors ("manifest KEY", "segment KEY").
 */
int gw_files_from_json(gw_files *out, struct json_t *arr, const char *what);
/* Write the files into dir, a repository being restored: links as links, modes exact; skipped paths not at all. */
int gw_files_install(const gw_files *f, const char *dir, const char *rel);
void gw_files_dispose(gw_files *f);

#endif
