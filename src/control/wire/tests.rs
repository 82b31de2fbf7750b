//! Tests of the control socket's wire format: framing, parsing and bounds.

use super::*;
use proptest::prelude::*;

#[test]
fn requests_round_trip_and_are_checked() {
    for request in [
        Request::Subscribe { v: VERSION },
        Request::Command {
            v: VERSION,
            command: Command::Pause,
        },
        Request::Command {
            v: VERSION,
            command: Command::ShowDigit(Some(7)),
        },
        Request::Command {
            v: VERSION,
            command: Command::FreshNoise(true),
        },
    ] {
        let bytes = line(&request);
        assert_eq!(parse_request(&bytes[..bytes.len() - 1]), Ok(request));
    }
    assert_eq!(
        parse_request(br#"{"type":"command","v":1,"command":"pause"}"#),
        Ok(Request::Command {
            v: 1,
            command: Command::Pause
        })
    );
    assert_eq!(
        parse_request(br#"{"type":"subscribe","v":2}"#),
        Err(RequestError::Version(2))
    );
    assert_eq!(
        parse_request(br#"{"type":"command","v":1,"command":{"show_digit":12}}"#),
        Err(RequestError::BadDigit(12))
    );
    assert!(matches!(
        parse_request(br#"{"type":"command","v":1,"command":"explode"}"#),
        Err(RequestError::Malformed(_))
    ));
    assert!(matches!(
        parse_request(br#"{"type":"subscribe","v":1,"extra":0}"#),
        Err(RequestError::Malformed(_))
    ));
    assert_eq!(parse_request(&[0xff, 0xfe]), Err(RequestError::NotText));
    assert_eq!(
        parse_request(&vec![b' '; MAX_REQUEST_BYTES]),
        Err(RequestError::TooLong)
    );
}

#[test]
fn the_line_reader_stops_at_its_bound() {
    let mut input: &[u8] = b"short\nmuch too long a line\nrest";
    let mut reader = std::io::BufReader::with_capacity(4, &mut input);
    assert_eq!(
        read_line_bounded(&mut reader, 8).unwrap(),
        LineRead::Line(b"short".to_vec())
    );
    assert_eq!(
        read_line_bounded(&mut reader, 8).unwrap(),
        LineRead::TooLong
    );
    let mut input: &[u8] = b"half a line";
    assert_eq!(
        read_line_bounded(&mut input, 100).unwrap(),
        LineRead::Closed
    );
}

#[test]
fn events_round_trip() {
    let msg = TrainMsg::Samples(crate::protocol::SampleGrid {
        step: 5,
        width: 2,
        height: 1,
        pixels: vec![0, 255, 3, 4],
        labels: Some(vec![1, 2]),
    });
    let bytes = line(&Reply::Event {
        v: VERSION,
        msg: Box::new(msg.clone()),
    });
    assert_eq!(
        parse_reply(&bytes[..bytes.len() - 1]),
        Ok(Reply::Event {
            v: VERSION,
            msg: Box::new(msg)
        })
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever bytes arrive, parsing answers with a request or an error, never a panic,
    /// and only well-formed version-1 requests are accepted.
    #[test]
    fn any_bytes_parse_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(request) = parse_request(&bytes) {
            let v = match request {
                Request::Subscribe { v } | Request::Command { v, .. } => v,
            };
            prop_assert_eq!(v, VERSION);
        }
    }

    /// Near-valid JSON (a valid request with one byte changed) never panics either.
    #[test]
    fn mutated_requests_never_panic(at in 0usize..60, byte in any::<u8>()) {
        let mut bytes = line(&Request::Command { v: VERSION, command: Command::ShowDigit(Some(3)) });
        bytes.pop();
        if let Some(b) = bytes.get_mut(at) {
            *b = byte;
        }
        let _ = parse_request(&bytes);
    }

    /// Whatever bytes the run (or something posing as it) sends, a viewer's parse answers
    /// with a reply or an error, never a panic.
    #[test]
    fn any_reply_bytes_parse_or_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_reply(&bytes);
    }

    /// Valid replies (a sample grid event, an acceptance, a refusal) with a byte changed,
    /// cut short or spliced into each other never panic, and a grid that still parses
    /// hands out every digit it counts.
    #[test]
    fn mutated_replies_never_panic(
        which in 0usize..3,
        at in 0usize..200,
        byte in any::<u8>(),
        cut in 0usize..200,
        splice in 0usize..3,
    ) {
        let replies = [
            line(&Reply::Event {
                v: VERSION,
                msg: Box::new(TrainMsg::Samples(crate::protocol::SampleGrid {
                    step: 9,
                    width: 3,
                    height: 2,
                    pixels: vec![0, 10, 20, 30, 40, 255, 1, 2, 3, 4, 5, 6],
                    labels: Some(vec![4, 2]),
                })),
            }),
            line(&Reply::Accepted { v: VERSION, command: Command::ShowDigit(Some(3)) }),
            line(&Reply::Refused { v: VERSION, error: "no".to_string() }),
        ];
        let mut bytes = replies[which].clone();
        bytes.pop();
        if let Some(b) = bytes.get_mut(at) {
            *b = byte;
        }
        bytes.truncate(cut.max(1));
        bytes.extend_from_slice(&replies[splice][cut.min(replies[splice].len())..]);
        // Sizes whose product overflows count as no digits, in debug builds too.
        let absurd = crate::protocol::SampleGrid {
            step: 0,
            width: usize::MAX / 2 + at,
            height: 2 + cut,
            pixels: vec![1; 4],
            labels: None,
        };
        prop_assert_eq!(absurd.count(), 0);
        prop_assert_eq!(absurd.digit(at), None);
        if let Ok(Reply::Event { msg, .. }) = parse_reply(&bytes)
            && let TrainMsg::Samples(grid) = *msg
        {
            for i in 0..grid.count() {
                prop_assert!(grid.digit(i).is_some());
            }
        }
    }

    /// The line reader never returns more than its bound, whatever the input.
    #[test]
    fn the_line_reader_is_bounded(bytes in proptest::collection::vec(any::<u8>(), 0..200), max in 0usize..50) {
        let mut input: &[u8] = &bytes;
        let mut reader = std::io::BufReader::with_capacity(7, &mut input);
        for _ in 0..300 {
            match read_line_bounded(&mut reader, max).unwrap() {
                LineRead::Line(l) => prop_assert!(l.len() <= max),
                LineRead::Closed | LineRead::TooLong => break,
            }
        }
    }
}
