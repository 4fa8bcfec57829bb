/*
 * Growable arrays (see gitwal/array.h).
 */
#include "gitwal/array.h"
#include "gitwal/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIN_CAPACITY 16

int gw_array_reserve(void *arrp, size_t *cap, size_t need, size_t elem)
{
	size_t max = SIZE_MAX / (elem ? elem : 1), n;
	void *arr, *grown;
	if (need <= *cap)
		return 0;
	if (need > max)
		return gw_error_set(GW_ERROR, "out of memory (an array of %zu elements of %zu bytes)", need, elem);
	n = *cap < MIN_CAPACITY ? MIN_CAPACITY : *cap > max / 2 ? max : *cap * 2;
	if (n > max)
		n = max;
	if (n < need)
		n = need;
	/* The caller's pointer is read and written as bytes: it may point to any object type. */
	memcpy(&arr, arrp, sizeof(arr));
	if (!(grown = realloc(arr, n * (elem ? elem : 1))))
		return gw_error_set(GW_ERROR, "out of memory");
	memcpy(arrp, &grown, sizeof(grown));
	*cap = n;
	return 0;
}
