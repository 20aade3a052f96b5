/* The label of positions that are not trained: -100, PyTorch's and HF's ignore_index. One
 * constant for the whole tree: data/ writes it, the trainer counts around it, the losses skip
 * it. */
#ifndef VT_IGNORE_H
#define VT_IGNORE_H

#define VT_IGNORE_INDEX (-100)

#endif
