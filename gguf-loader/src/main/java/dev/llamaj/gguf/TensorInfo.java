package dev.llamaj.gguf;

import java.util.Arrays;

/// One entry of the tensor table: name, element type, shape and the data offset relative to the start of the
/// tensor data section.
///
/// `shape[0]` is ggml's `ne0`, the contiguous dimension: a weight matrix of `rows x cols` has shape
/// `[cols, rows]`.
public record TensorInfo(String name, GGMLType type, long[] shape, long offset) {

    public TensorInfo {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    /// Extent of dimension `i` (1 beyond the stored dimensions, as in ggml).
    public long dim(int i) {
        return i < shape.length ? shape[i] : 1;
    }

    public int dimensions() {
        return shape.length;
    }

    public long elementCount() {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    public long byteSize() {
        return type.byteSize(elementCount());
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t && name.equals(t.name) && type == t.type && Arrays.equals(shape, t.shape)
                && offset == t.offset;
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + " " + type + " " + Arrays.toString(shape) + " @" + offset;
    }
}
