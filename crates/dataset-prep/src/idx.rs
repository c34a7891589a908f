//! The IDX format of the MNIST files, parsed from bytes already in memory so that
//! tests can feed it hand-built files.
//!
//! Layout (all integers big-endian u32): magic, item count, then for images the row
//! and column counts; after the header, one byte a label or one byte a pixel, row by
//! row. The magic's low bytes say "unsigned byte data, 3 (or 1) dimensions".

use std::fmt;

pub const IMAGES_MAGIC: u32 = 2051;
pub const LABELS_MAGIC: u32 = 2049;
pub const SIDE: usize = 28;
pub const IMAGE_BYTES: usize = SIDE * SIDE;
const IMAGES_HEADER: usize = 16;
const LABELS_HEADER: usize = 8;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Everything that can be wrong with an IDX file's content. The caller adds the
/// file's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdxError {
    /// Shorter than the fixed header.
    NoHeader {
        len: usize,
        header: usize,
    },
    WrongMagic {
        found: u32,
        expected: u32,
    },
    WrongDimensions {
        rows: u32,
        cols: u32,
    },
    /// Fewer bytes than the header's count promises.
    Truncated {
        len: usize,
        expected: usize,
        count: usize,
    },
    /// More bytes than the header's count accounts for.
    TrailingBytes {
        len: usize,
        expected: usize,
        count: usize,
    },
    LabelOutOfRange {
        index: usize,
        label: u8,
        bad: usize,
    },
}

impl fmt::Display for IdxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IdxError::NoHeader { len, header } => {
                write!(
                    f,
                    "truncated file: {len} bytes, shorter than the {header}-byte IDX header"
                )
            }
            IdxError::WrongMagic { found, expected } => {
                write!(
                    f,
                    "wrong magic number {found} (0x{found:08x}), expected {expected}"
                )?;
                if found == other_magic(expected) {
                    let kind = if found == IMAGES_MAGIC {
                        "an image"
                    } else {
                        "a label"
                    };
                    write!(f, "; this is {kind} file, are two files swapped?")?;
                } else if found.to_be_bytes()[..2] == GZIP_MAGIC {
                    write!(
                        f,
                        "; the file looks gzip-compressed, name it with a .gz suffix"
                    )?;
                }
                Ok(())
            }
            IdxError::WrongDimensions { rows, cols } => {
                write!(
                    f,
                    "wrong dimensions: images are {rows}x{cols}, expected {SIDE}x{SIDE}"
                )
            }
            IdxError::Truncated {
                len,
                expected,
                count,
            } => write!(
                f,
                "truncated file: {len} bytes, but its header announces {count} items, \
                 which take {expected} bytes"
            ),
            IdxError::TrailingBytes {
                len,
                expected,
                count,
            } => write!(
                f,
                "trailing bytes: {len} bytes, but its header announces {count} items, \
                 which take only {expected} bytes"
            ),
            IdxError::LabelOutOfRange { index, label, bad } => write!(
                f,
                "label out of range: label {index} is {label}, labels must be 0-9 \
                 ({bad} labels are out of range)"
            ),
        }
    }
}

impl std::error::Error for IdxError {}

fn other_magic(magic: u32) -> u32 {
    if magic == IMAGES_MAGIC {
        LABELS_MAGIC
    } else {
        IMAGES_MAGIC
    }
}

/// The pixels of an image file: `count` images of 28x28 bytes, row by row.
#[derive(Debug, PartialEq, Eq)]
pub struct Images<'a> {
    pub count: usize,
    pub pixels: &'a [u8],
}

/// Parses an image file: magic 2051, 28x28 images, exactly as many bytes as the
/// header's count needs.
pub fn parse_images(bytes: &[u8]) -> Result<Images<'_>, IdxError> {
    let (count, body) = header(bytes, IMAGES_MAGIC, IMAGES_HEADER)?;
    let (rows, cols) = (be_u32(bytes, 8), be_u32(bytes, 12));
    if rows as usize != SIDE || cols as usize != SIDE {
        return Err(IdxError::WrongDimensions { rows, cols });
    }
    let pixels = exact_body(bytes.len(), body, count, IMAGE_BYTES, IMAGES_HEADER)?;
    Ok(Images { count, pixels })
}

/// Parses a label file: magic 2049, one byte a label, every label 0-9.
pub fn parse_labels(bytes: &[u8]) -> Result<&[u8], IdxError> {
    let (count, body) = header(bytes, LABELS_MAGIC, LABELS_HEADER)?;
    let labels = exact_body(bytes.len(), body, count, 1, LABELS_HEADER)?;
    if let Some(index) = labels.iter().position(|&l| l > 9) {
        let bad = labels.iter().filter(|&&l| l > 9).count();
        return Err(IdxError::LabelOutOfRange {
            index,
            label: labels[index],
            bad,
        });
    }
    Ok(labels)
}

/// Checks the magic and returns the item count and the bytes after the header.
fn header(bytes: &[u8], magic: u32, header: usize) -> Result<(usize, &[u8]), IdxError> {
    // The magic is checked before the length so that a file of the wrong kind,
    // even a short one, is reported as such rather than as truncated.
    if bytes.len() >= 4 && be_u32(bytes, 0) != magic {
        return Err(IdxError::WrongMagic {
            found: be_u32(bytes, 0),
            expected: magic,
        });
    }
    if bytes.len() < header {
        return Err(IdxError::NoHeader {
            len: bytes.len(),
            header,
        });
    }
    Ok((be_u32(bytes, 4) as usize, &bytes[header..]))
}

fn exact_body(
    len: usize,
    body: &[u8],
    count: usize,
    item: usize,
    header: usize,
) -> Result<&[u8], IdxError> {
    // u32 counts times 784 fit a 64-bit usize; saturate anyway so that a 32-bit
    // build reports a huge count as truncation instead of wrapping.
    let expected = count.saturating_mul(item).saturating_add(header);
    if len < expected {
        return Err(IdxError::Truncated {
            len,
            expected,
            count,
        });
    }
    if len > expected {
        return Err(IdxError::TrailingBytes {
            len,
            expected,
            count,
        });
    }
    Ok(body)
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Builds IDX files; the tests' way of making good and broken inputs.
pub mod build {
    use super::*;

    pub fn images(pixels: &[u8], count: u32, rows: u32, cols: u32) -> Vec<u8> {
        let mut out = Vec::with_capacity(IMAGES_HEADER + pixels.len());
        for word in [IMAGES_MAGIC, count, rows, cols] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(pixels);
        out
    }

    pub fn labels(labels: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(LABELS_HEADER + labels.len());
        out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
        out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        out.extend_from_slice(labels);
        out
    }

    /// `n` 28x28 images whose pixel values count up from the image's index, so
    /// that a reordering shows.
    pub fn pixels(n: usize) -> Vec<u8> {
        (0..n * IMAGE_BYTES)
            .map(|i| ((i / IMAGE_BYTES + i) % 256) as u8)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::build;
    use super::*;

    #[test]
    fn parses_images_and_labels() {
        let pixels = build::pixels(3);
        let file = build::images(&pixels, 3, 28, 28);
        let images = parse_images(&file).unwrap();
        assert_eq!(images.count, 3);
        assert_eq!(images.pixels, &pixels[..]);
        let file = build::labels(&[7, 0, 9]);
        assert_eq!(parse_labels(&file).unwrap(), &[7, 0, 9]);
    }

    #[test]
    fn empty_sets_parse() {
        assert_eq!(
            parse_images(&build::images(&[], 0, 28, 28)).unwrap().count,
            0
        );
        assert!(parse_labels(&build::labels(&[])).unwrap().is_empty());
    }

    #[test]
    fn wrong_magic_names_swapped_files() {
        let err = parse_images(&build::labels(&[1, 2])).unwrap_err();
        assert_eq!(
            err,
            IdxError::WrongMagic {
                found: LABELS_MAGIC,
                expected: IMAGES_MAGIC
            }
        );
        assert!(err.to_string().contains("swapped"), "{err}");
        let err = parse_labels(&build::images(&build::pixels(1), 1, 28, 28)).unwrap_err();
        assert_eq!(
            err,
            IdxError::WrongMagic {
                found: IMAGES_MAGIC,
                expected: LABELS_MAGIC
            }
        );
    }

    #[test]
    fn wrong_magic_spots_gzip() {
        let err = parse_labels(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert!(matches!(err, IdxError::WrongMagic { .. }));
        assert!(err.to_string().contains(".gz"), "{err}");
    }

    #[test]
    fn short_header_is_truncation() {
        let file = build::images(&[], 0, 28, 28);
        assert_eq!(
            parse_images(&file[..10]),
            Err(IdxError::NoHeader {
                len: 10,
                header: 16
            })
        );
        assert_eq!(
            parse_labels(&[0, 0]),
            Err(IdxError::NoHeader { len: 2, header: 8 })
        );
    }

    #[test]
    fn wrong_dimensions() {
        let file = build::images(&[0; 2 * 27 * 28], 2, 27, 28);
        assert_eq!(
            parse_images(&file),
            Err(IdxError::WrongDimensions { rows: 27, cols: 28 })
        );
    }

    #[test]
    fn truncated_and_trailing_bytes() {
        let mut file = build::images(&build::pixels(2), 2, 28, 28);
        let full = file.len();
        file.pop();
        assert_eq!(
            parse_images(&file),
            Err(IdxError::Truncated {
                len: full - 1,
                expected: full,
                count: 2
            })
        );
        file.extend_from_slice(&[0, 0]);
        assert_eq!(
            parse_images(&file),
            Err(IdxError::TrailingBytes {
                len: full + 1,
                expected: full,
                count: 2
            })
        );
        let mut labels = build::labels(&[1, 2, 3]);
        labels.push(4);
        assert!(matches!(
            parse_labels(&labels),
            Err(IdxError::TrailingBytes { .. })
        ));
        labels.truncate(9);
        assert!(matches!(
            parse_labels(&labels),
            Err(IdxError::Truncated { .. })
        ));
    }

    #[test]
    fn huge_count_is_truncation_not_overflow() {
        let file = build::images(&[], u32::MAX, 28, 28);
        assert!(matches!(
            parse_images(&file),
            Err(IdxError::Truncated { .. })
        ));
    }

    #[test]
    fn label_out_of_range() {
        let err = parse_labels(&build::labels(&[3, 10, 9, 255])).unwrap_err();
        assert_eq!(
            err,
            IdxError::LabelOutOfRange {
                index: 1,
                label: 10,
                bad: 2
            }
        );
    }
}
