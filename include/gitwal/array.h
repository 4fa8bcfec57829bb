/*
 * Growable arrays: the one way gitwal makes room in a malloc'd array, with
 * the size arithmetic checked for overflow, instead of each caller doubling
 * its own. An array is a pointer and a capacity in elements (its count is
 * the caller's):
 *
 *     if (GW_ARRAY_RESERVE(l->items, l->cap, l->n + 1) < 0)
 *             return GW_ERROR;
 *     l->items[l->n++] = item;
 */
#ifndef GITWAL_ARRAY_H
#define GITWAL_ARRAY_H

#include <stddef.h>

/*
 * Make room for `need` elements of `elem` bytes in the array *arrp (a pointer
 * to the array's pointer) whose capacity is *cap. The capacity at least
 * doubles (from 16), so n appends cost O(n) copying. On failure (out of
 * memory, or a size past SIZE_MAX) GW_ERROR and "out of memory", with the
 * array and *cap unchanged.
 */
int gw_array_reserve(void *arrp, size_t *cap, size_t need, size_t elem);

/* gw_array_reserve for an array of any type: arr and cap are lvalues (cap a size_t). */
#define GW_ARRAY_RESERVE(arr, cap, need) gw_array_reserve(&(arr), &(cap), (need), sizeof(*(arr)))

#endif
