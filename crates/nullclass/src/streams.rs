//! Counter-based random numbers in tensor ops: the trainer's batches, nulls and
//! dropout masks ([`crate::stacked`]) and adversary-gen's PGD starts draw from them.
//!
//! A stream is a 32-bit key; its numbers are `hash32(key + counter * W mod 2^32)`,
//! where `hash32` is a bijective integer mixer and `W` an odd Weyl increment, so
//! the numbers of one stream never repeat within 2^32 counters. Values live in
//! int64 tensors but stay below 2^32, and every product stays below 2^63: the
//! arithmetic is exact on every device, so a stream gives the same bits on CPU and
//! GPU and in any batch shape.
//!
//! Each purpose (digit indices, null flags, ...) reads its own counter range of a
//! batch's stream, so drawing more or fewer numbers for one purpose never shifts
//! another.

use tch::{Device, Kind, Tensor};

pub const MASK32: i64 = 0xFFFF_FFFF;
/// 2^32 - floor(2^32 / golden ratio): odd and below 2^31, so counter * W < 2^63.
const WEYL: i64 = 0x61C8_8647;
/// Counters of one purpose: `[p << 24, (p + 1) << 24)`.
const PURPOSE_SHIFT: i64 = 24;
pub const MAX_DRAWS: i64 = 1 << PURPOSE_SHIFT;

/// Counter ranges of a batch's stream, one per use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum Purpose {
    Digits = 0,
    NullFlag = 1,
    NullType = 2,
    Uniform = 3,
    MixedA = 4,
    MixedB = 5,
    ShuffleSource = 6,
    TileSize = 7,
    TilePerm = 8,
    Dropout1 = 9,
    Dropout2 = 10,
}

/// Which family of batches a key belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum Domain {
    Train = 1,
    Validation = 2,
}

/// splitmix64's finaliser, for keys derived on the host.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A model's 32-bit stream root, from the torch seed the trainer gives it.
pub fn model_key(torch_seed: i64) -> i64 {
    (mix64(torch_seed as u64 ^ 0x6E75_6C6C_636C_6173) & MASK32 as u64) as i64
}

/// The host half of a batch key: what is xor-ed into the model keys for batch
/// `index` of `domain` (training step or validation chunk).
pub fn batch_salt(domain: Domain, index: u64) -> i64 {
    (mix64((domain as u64) << 48 ^ index) & MASK32 as u64) as i64
}

/// Wellons' 2-round 32-bit mixer (bias ~0.11), written so that no intermediate
/// reaches 2^63: both multipliers are below 2^31. A bijection on [0, 2^32).
pub fn hash32(x: &Tensor) -> Tensor {
    let mut x = x.bitwise_xor_tensor(&x.bitwise_right_shift_tensor_scalar(16));
    x = x.g_mul_scalar_(0x21F0_AAAD_i64).bitwise_and_(MASK32);
    x = x.bitwise_xor_tensor(&x.bitwise_right_shift_tensor_scalar(15));
    x = x.g_mul_scalar_(0x735A_2D97_i64).bitwise_and_(MASK32);
    x.bitwise_xor_tensor(&x.bitwise_right_shift_tensor_scalar(15))
}

/// Keys `[G]` of G batches: each model key mixed with the host salt of the batch.
pub fn batch_keys(model_keys: &Tensor, salt: i64) -> Tensor {
    hash32(&model_keys.bitwise_xor(salt))
}

/// `n` numbers in [0, 2^32) per key for one purpose: `[G, n]` int64.
pub fn bits(keys: &Tensor, purpose: Purpose, n: i64) -> Tensor {
    assert!(n <= MAX_DRAWS, "{n} draws exceed a purpose's counter range");
    let first = (purpose as i64) << PURPOSE_SHIFT;
    let device = keys.device();
    let offsets = Tensor::arange_start(first, first + n, (Kind::Int64, device))
        .g_mul_scalar_(WEYL)
        .bitwise_and_(MASK32);
    let x = (keys.view([-1, 1]) + offsets.view([1, n])).bitwise_and_(MASK32);
    hash32(&x)
}

/// Integers uniform in [0, bound) from 32-bit numbers: `floor(u * bound / 2^32)`.
/// `bound` (at most 2^31) broadcasts against `u`. The bias is below bound / 2^32.
pub fn below(u: &Tensor, bound: &Tensor) -> Tensor {
    (u * bound).bitwise_right_shift_tensor_scalar_(32)
}

/// As [`below`] with one bound for all.
pub fn below_scalar(u: &Tensor, bound: i64) -> Tensor {
    assert!(bound <= 1 << 31);
    u.g_mul_scalar(bound).bitwise_right_shift_tensor_scalar_(32)
}

/// Floats in [0, 1) with 24 random bits (the resolution of torch.rand in float32).
pub fn unit_float(u: &Tensor) -> Tensor {
    u.bitwise_right_shift_tensor_scalar(8)
        .to_kind(Kind::Float)
        .g_mul_scalar_(1.0 / (1u64 << 24) as f64)
}

/// Dropout keep masks `[G, n]` for drop probability `p`, as booleans (true: kept);
/// the kept values are then scaled by [`keep_scale`]. `p` must be a multiple of
/// 1/256: each element reads b bits (b in 1, 2, 4, 8, the fewest that express p)
/// and is dropped when they are below p * 2^b, so one 32-bit number serves 32/b
/// elements and the mask costs a few passes.
pub fn keep_mask(keys: &Tensor, purpose: Purpose, n: i64, p: f64) -> Tensor {
    let g = keys.size()[0];
    let device = keys.device();
    if p <= 0.0 {
        return Tensor::ones([g, n], (Kind::Bool, device));
    }
    let b = dyadic_bits(p).expect("drop probability must be a multiple of 1/256 below 1");
    let per_word = 32 / b;
    let words = (n + per_word - 1) / per_word;
    let drop_below = (p * (1u64 << b) as f64).round() as i64;
    let shifts = Tensor::arange(per_word, (Kind::Int, device)).g_mul_scalar_(b);
    // The expansion is the big tensor: int32 halves its traffic. The cast wraps the
    // numbers above 2^31 to negatives, whose arithmetic shifts still hold the same
    // low b bits.
    bits(keys, purpose, words)
        .to_kind(Kind::Int)
        .unsqueeze(2)
        .bitwise_right_shift(&shifts)
        .bitwise_and_((1i64 << b) - 1)
        .view([g, words * per_word])
        .narrow(1, 0, n)
        .ge(drop_below)
}

/// What dropout with drop probability `p` multiplies the kept values by.
pub fn keep_scale(p: f64) -> f64 {
    1.0 / (1.0 - p)
}

/// The fewest bits b in {1, 2, 4, 8} with p * 2^b a whole number, for 0 < p < 1.
pub fn dyadic_bits(p: f64) -> Option<i64> {
    if !(p > 0.0 && p < 1.0) {
        return None;
    }
    [1i64, 2, 4, 8].into_iter().find(|&b| {
        let scaled = p * (1u64 << b) as f64;
        scaled == scaled.round()
    })
}

/// The model keys of a stack, on `device` (uploaded once per run).
pub fn model_keys(torch_seeds: &[i64], device: Device) -> Tensor {
    let keys: Vec<i64> = torch_seeds.iter().map(|&s| model_key(s)).collect();
    Tensor::from_slice(&keys).to_device(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_ref(mut x: u32) -> u32 {
        x ^= x >> 16;
        x = x.wrapping_mul(0x21F0_AAAD);
        x ^= x >> 15;
        x = x.wrapping_mul(0x735A_2D97);
        x ^ (x >> 15)
    }

    #[test]
    fn tensor_hash_matches_u32_reference() {
        let xs: Vec<i64> = [
            0u32,
            1,
            2,
            0xFFFF_FFFF,
            0x8000_0000,
            123_456_789,
            0xDEAD_BEEF,
        ]
        .iter()
        .map(|&x| x as i64)
        .collect();
        let got = Vec::<i64>::try_from(hash32(&Tensor::from_slice(&xs))).unwrap();
        for (x, h) in xs.iter().zip(got) {
            assert_eq!(h, hash_ref(*x as u32) as i64, "hash32({x})");
        }
    }

    #[test]
    fn streams_are_distinct_and_in_range() {
        let keys = Tensor::from_slice(&[5i64, 6]);
        let b = bits(&keys, Purpose::Uniform, 1000);
        assert_eq!(b.size(), [2, 1000]);
        assert!(b.min().int64_value(&[]) >= 0 && b.max().int64_value(&[]) <= MASK32);
        // Distinct within a stream: hash32 and the Weyl sequence are bijections.
        for row in 0..2 {
            let sorted = b.get(row).sort(0, false).0;
            let steps = sorted.narrow(0, 1, 999) - sorted.narrow(0, 0, 999);
            assert!(steps.min().int64_value(&[]) > 0);
        }
        // Another purpose of the same key is another sequence.
        let c = bits(&keys, Purpose::NullFlag, 1000);
        assert!(!b.equal(&c));
    }

    #[test]
    fn dropout_fields_are_the_streams_bits_in_order() {
        // Element j of word w is bits [b*j, b*(j+1)) of the word, read without sign.
        let keys = Tensor::from_slice(&[9i64, 10]);
        let m = keep_mask(&keys, Purpose::Dropout2, 50, 0.25);
        assert_eq!(m.kind(), Kind::Bool);
        let words = Vec::<i64>::try_from(bits(&keys, Purpose::Dropout2, 4).view([-1])).unwrap();
        let got = Vec::<bool>::try_from(m.view([-1])).unwrap();
        for g in 0..2 {
            for j in 0..50 {
                let field = (words[g * 4 + j / 16] >> (2 * (j % 16))) & 3;
                assert_eq!(got[g * 50 + j], field >= 1, "batch {g} element {j}");
            }
        }
    }

    #[test]
    fn dropout_masks_keep_the_right_share() {
        assert_eq!(dyadic_bits(0.5), Some(1));
        assert_eq!(dyadic_bits(0.25), Some(2));
        assert_eq!(dyadic_bits(0.125), Some(4));
        assert_eq!(dyadic_bits(0.3), None);
        let keys = Tensor::from_slice(&[1i64, 2, 3]);
        for p in [0.25, 0.5] {
            let m = keep_mask(&keys, Purpose::Dropout1, 100_001, p);
            assert_eq!(m.size(), [3, 100_001]);
            let kept = m.to_kind(Kind::Double).mean(Kind::Double).double_value(&[]);
            assert!((kept - (1.0 - p)).abs() < 0.005, "p {p}: kept {kept}");
        }
    }
}
