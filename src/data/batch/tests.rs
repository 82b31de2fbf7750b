//! Tests of batching: shuffled epochs, scaling to [-1, 1] and labels.

use super::*;

/// Three 28x28 digits: all 0, all 255, and a ramp, labelled 1, 2, 3.
fn tiny_set() -> DigitSet {
    let mut images = vec![0u8; 784];
    images.extend([255u8; 784]);
    images.extend((0..784).map(|i| (i % 256) as u8));
    DigitSet {
        images,
        labels: vec![1, 2, 3],
        rows: 28,
        cols: 28,
        source: "tiny".to_string(),
    }
}

#[test]
fn epoch_order_is_a_permutation() {
    for len in [0, 1, 2, 17, 1000] {
        let mut order = epoch_order(len, 7, 3);
        order.sort_unstable();
        assert_eq!(order, (0..len as u32).collect::<Vec<_>>());
    }
}

#[test]
fn epoch_order_is_a_pure_function_of_seed_and_epoch() {
    assert_eq!(epoch_order(1000, 42, 5), epoch_order(1000, 42, 5));
    assert_ne!(epoch_order(1000, 42, 5), epoch_order(1000, 42, 6));
    assert_ne!(epoch_order(1000, 42, 5), epoch_order(1000, 43, 5));
    assert_ne!(epoch_order(1000, 42, 0), (0..1000).collect::<Vec<u32>>());
}

#[test]
fn epoch_order_is_pinned() {
    // A change here silently breaks resuming runs saved by an earlier build.
    assert_eq!(epoch_order(10, 0, 0), PINNED_SEED0_EPOCH0);
}
const PINNED_SEED0_EPOCH0: [u32; 10] = [2, 1, 3, 8, 7, 4, 5, 6, 0, 9];

#[test]
fn batch_counts_follow_pytorch() {
    assert_eq!(batches_per_epoch(60_000, 64), 938);
    assert_eq!(batches_per_epoch(64, 64), 1);
    assert_eq!(batches_per_epoch(65, 64), 2);
    assert_eq!(batches_per_epoch(0, 64), 0);
    assert_eq!(batches_per_epoch(10, 0), 0);
    let order = epoch_order(60_000, 1, 0);
    assert_eq!(batch_indices(&order, 64, 0).map(<[u32]>::len), Some(64));
    assert_eq!(batch_indices(&order, 64, 937).map(<[u32]>::len), Some(32));
    assert_eq!(batch_indices(&order, 64, 937), order.get(59_968..));
    assert_eq!(batch_indices(&order, 64, 938), None);
    assert_eq!(batch_indices(&order, 0, 0), None);
    assert_eq!(batch_indices(&order, 64, u64::MAX), None);
}

#[test]
fn normalize_matches_torchvision() {
    assert_eq!(normalize(0), -1.0);
    assert_eq!(normalize(255), 1.0);
    assert_eq!(normalize(51), (51.0f32 / 255.0 - 0.5) / 0.5);
    for p in 0..=255u8 {
        assert_eq!(normalize(p), (p as f32 / 255.0 - 0.5) / 0.5);
    }
}

#[test]
fn fill_batch_scales_and_orders_images() {
    let set = tiny_set();
    let mut out = vec![9.0; 5];
    fill_batch(&set, &[1, 0], &mut out).unwrap();
    assert_eq!(out.len(), 2 * 784);
    assert!(out[..784].iter().all(|&v| v == 1.0));
    assert!(out[784..].iter().all(|&v| v == -1.0));

    // A short last batch: one image of a batch of three.
    fill_batch(&set, &[2], &mut out).unwrap();
    assert_eq!(out.len(), 784);
    assert_eq!(out[1], normalize(1));
    assert_eq!(out[300], normalize((300 % 256) as u8));
    assert!(out.iter().all(|v| (-1.0..=1.0).contains(v)));

    fill_batch(&set, &[], &mut out).unwrap();
    assert!(out.is_empty());
}

#[test]
fn fill_labels_follows_indices() {
    let set = tiny_set();
    let mut out = Vec::new();
    fill_labels(&set, &[2, 0, 0, 1], &mut out).unwrap();
    assert_eq!(out, vec![3, 1, 1, 2]);
}

#[test]
fn out_of_range_indices_are_errors_not_panics() {
    let set = tiny_set();
    let mut floats = Vec::new();
    let err = fill_batch(&set, &[0, 3], &mut floats).unwrap_err();
    assert_eq!(
        err.to_string(),
        "digit 3 is out of range: tiny holds 3 digits"
    );
    assert!(floats.is_empty());
    let mut labels = vec![7];
    let err = fill_labels(&set, &[u32::MAX], &mut labels).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("digit 4294967295 is out of range")
    );
    assert!(labels.is_empty());
}
