/*
 * What the phases of a restore share and nothing else may see. A restore
 * runs them in order (restore.c):
 *
 *   plan     (plan.c)    from the index alone: the full backup, the span of
 *                        segments after it and the refs at the end;
 *   fetch    (fetch.c)   each part of the plan read from the store once,
 *                        through the checks of what the index and the
 *                        manifest say of it (size, SHA-256, the packs
 *                        against their indexes);
 *   build    (build.c)   a bare repository in a scratch directory: one pack
 *                        of the full backup and the segments, its refs;
 *   install  (install.c) the scratch directory renamed into place.
 */
#ifndef GITWAL_RESTORE_INTERNAL_H
#define GITWAL_RESTORE_INTERNAL_H

#include "gitwal/restore.h"
#include "gitwal/manifest.h"
#include "format/refstate.h"
#include "pack/pack.h"

#include <stddef.h>
#include <stdint.h>

/* Segments up to this size are read whole and their packs appended to one; larger ones are streamed. */
#define GW_RESTORE_SEGMENT_IN_MEMORY (8u << 20)

/* What building needs of a segment: the index's record, compacted (a plan may hold a great many). */
typedef struct gw_restore_segment {
	uint64_t lsn, size, objects;
	char *key;
	unsigned char sha256[32];
} gw_restore_segment;

typedef struct gw_restore_plan {
	gw_full_record full;
	gw_manifest m;
	gw_index_span span;
	gw_restore_segment *segs; /* filled only to build (gw_restore__plan_segments): a dry run needs none */
	size_t nsegs, cap;
	unsigned char last_sha256[32]; /* of the last record loaded: the next must link to it */
	gw_refstate state;
	int exists;
	int not_archived; /* until is before the first full backup, and nothing of the repository is older */
	gw_restore_gap *gaps;
	size_t ngaps, gaps_cap;
	gw_files *files; /* the newest set a segment of the span carries (gw_restore__plan_files); NULL: m.files */
} gw_restore_plan;

/* ---- plan.c ---- */

/*
 * The plan for rel: with opts->until_set, the newest full backup at or
 * before the time and its segments up to it (the index synced from the
 * store first unless opts->index_synced); otherwise the full backup at
 * opts->lsn, or the latest. Reads the index and the full backup's manifest,
 * nothing else. A repository deleted by then is p->exists 0 (not an error
 * here); one not archived yet then is p->not_archived, with the error.
 * Dispose of p whatever it returns.
 */
int gw_restore__plan(gw_store *store, gw_index *index, const char *rel, const gw_restore_opts *opts,
		     gw_restore_plan *p);
/* The span's segment records, read for building and checked once more: contiguous, linked, of this generation. */
int gw_restore__plan_segments(gw_index *index, const char *rel, gw_restore_plan *p);
/*
 * A pooled member's pool as its span's last segment names it (DESIGN.md
 * 19): the same pool and pool generation as the full backup's, or
 * GW_ECORRUPT naming the segment; p->m.pool.lsn then the segment's.
 */
int gw_restore__plan_pool(gw_store *store, const char *rel, gw_restore_plan *p);
/*
 * The repository's files at the span's end: those of its newest segment
 * carrying them (DESIGN.md 4.5: its header read back, its set checked
 * against the digest the index recorded; the build then checks the whole
 * segment against its own), else the full backup's (p->files left NULL).
 */
int gw_restore__plan_files(gw_store *store, gw_index *index, const char *rel, gw_restore_plan *p);
/* The end state as the CLI prints it: HEAD first, then the refs by name. */
int gw_restore__plan_end_refs(const gw_restore_plan *p, gw_restore_result *res);
void gw_restore__plan_dispose(gw_restore_plan *p);

/* ---- fetch.c ---- */

/*
 * The full backup's index into path, checked (size and SHA-256 against the
 * manifest, for the manifest's pack, holding its objects, then on its own:
 * its SHA-1, fanout, sorted unique ids) and opened in *idx through *fd
 * (the caller closes it, -1 when not opened). durable: fsync'd, to be
 * installed; otherwise a scratch file.
 */
int gw_restore__fetch_full_index(gw_store *store, const gw_manifest *m, const char *path, int durable, gw_idx *idx,
				 int *fd);
/*
 * The full backup's pack (its bundle from pack_offset on) into out: the
 * bundle read once and checked against the manifest (size, SHA-256) on the
 * way. trailer gets the pack's last m->hash_len bytes, for
 * gw_restore__check_pack_trailer once out has done its own checks.
 */
int gw_restore__fetch_full_pack(gw_store *store, const gw_manifest *m, gw_sink *out,
				unsigned char trailer[GW_HASH_MAX]);
/* The pack's header (its first 12 bytes) and trailer against the manifest. */
int gw_restore__check_pack_header(const gw_manifest *m, const unsigned char *header);
int gw_restore__check_pack_trailer(const gw_manifest *m, const unsigned char *trailer);
/*
 * A small segment read whole and checked (size and SHA-256 against the
 * index and its trailer, its lengths), its pack and index appended to app
 * (NULL: the segment must hold no objects).
 */
int gw_restore__fetch_segment_append(gw_store *store, const gw_restore_segment *seg, gw_pack_appender *app);
/*
 * A segment of any size streamed once, checked as above, its pack and
 * index written into dir/objects/pack as pack-<checksum>.pack/.idx (n
 * names the temporary files), its ids hash_len bytes (the generation's
 * format); nothing for a segment without objects.
 */
int gw_restore__fetch_segment_pack(gw_store *store, const gw_restore_segment *seg, const char *dir, unsigned n,
				   size_t hash_len);

/* ---- build.c ---- */

/* A finished pack and its index, named by the pack's checksum: moved from their temporary names into packdir. */
int gw_restore__name_pack(const char *packdir, const char *tmp_pack, const char *tmp_idx,
			  const unsigned char *checksum, size_t hash_len);
/* The repository of plan p built in dir (created empty): its objects, checked, and its refs; not yet durable. */
int gw_restore__build(gw_store *store, const char *rel, const gw_restore_plan *p, const char *dir, int skeleton_files,
		      const char *pool_dir, const char *alternates);
/* dir/name holding content, fsync'd. */
int gw_restore__write_file(const char *dir, const char *name, const char *content);
/* The full backup's pack and index, as they are, into dir/objects/pack; name gets "pack-<checksum>". */
int gw_restore__build_full_pack(gw_store *store, const gw_manifest *m, const char *dir, char *name, size_t name_size);

/* ---- pool.c ---- */
/*
 * The run's registry (opts->pools): 1 when rel is this thread's to restore
 * (then gw_restore__pools_done with the outcome); 0 when the run restored it
 * already (waited for if another thread was at it): *rc and *res are its.
 */
int gw_restore__pools_claim(gw_restore_pools *r, const char *rel, gw_restore_result *res, int *rc);
void gw_restore__pools_done(gw_restore_pools *r, const char *rel, int rc, const gw_restore_result *res);
/*
 * A pooled member's pool, restored as of the member's time (once per run)
 * under opts->to, into pool_dir; with the member's pool generation added when
 * the pool was restored in another (DESIGN.md 19).
 */
int gw_restore__pool(gw_store *store, gw_index *index, const char *member, const gw_restore_opts *opts,
		     const gw_pool_dep *dep, char *pool_dir, size_t pool_dir_size);
/*
 * --standalone: the objects st's refs reach, read through the pool restored
 * at pool_dir, that dir's own packs lack, written as a pack of dir's own;
 * dir is left without alternates.
 */
int gw_restore__standalone(const char *dir, const char *pool_dir, const char *rel, const gw_refstate *st,
			   size_t hash_len);

/* ---- install.c ---- */

/*
 * Where rel goes (opts->to/rel), refused when it exists and is not empty,
 * unless opts->force (*replace then set); and a fresh scratch directory
 * beside it in tmp, once the dead restores' there are cleared.
 */
int gw_restore__prepare_target(const char *rel, const gw_restore_opts *opts, char *target, size_t tsize, char *tmp,
			       size_t tmpsize, int *replace);
/* The finished tmp, made durable, moved into target: a rename, or an exchange when replacing. */
int gw_restore__install(const char *tmp, const char *target, int replace, const char *rel);

#endif
