//! RFC 8785 (JSON Canonicalization Scheme): the exact bytes that audit hashes cover, so
//! that any verifier in any language computes the same hash from the same row.

use serde_json::Value;

/// The canonical form of a JSON value: sorted keys (by UTF-16 code units), no
/// insignificant whitespace, ECMAScript number formatting, minimal string escapes.
pub fn canonical_json(value: &Value) -> String {
    // A serde_json::Value never holds NaN or infinities, the only inputs the
    // canonicalizer refuses, so this cannot fail.
    serde_json_canonicalizer::to_string(value).expect("serde_json values are always canonicalizable")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8785 section 3.2.2: the sample input and its canonical output.
    #[test]
    fn rfc8785_sample() {
        let input = r#"{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        let v: Value = serde_json::from_str(input).unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    /// RFC 8785 section 3.2.3: property names sort by UTF-16 code units.
    #[test]
    fn rfc8785_sorting() {
        let input = r#"{
          "\u20ac": "Euro Sign",
          "\r": "Carriage Return",
          "\ufb33": "Hebrew Letter Dalet With Dagesh",
          "1": "One",
          "\ud83d\ude00": "Emoji: Grinning Face",
          "\u0080": "Control",
          "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let v: Value = serde_json::from_str(input).unwrap();
        let out = canonical_json(&v);
        let order = ["Carriage Return", "One", "Control", "Latin Small", "Euro Sign", "Emoji", "Hebrew"];
        let positions: Vec<usize> = order.iter().map(|s| out.find(s).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{out}");
    }

    /// RFC 8785 appendix B: number serialization samples.
    #[test]
    fn rfc8785_numbers() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "0"),
            (f64::from_bits(0x0000000000000001), "5e-324"),
            (f64::from_bits(0x7fefffffffffffff), "1.7976931348623157e+308"),
            (f64::from_bits(0x4340000000000000), "9007199254740992"),
            (f64::from_bits(0x444b1ae4d6e2ef50), "1e+21"),
            (f64::from_bits(0x44b52d02c7e14af5), "9.999999999999997e+22"),
            (f64::from_bits(0x44b52d02c7e14af6), "1e+23"),
            (f64::from_bits(0x44b52d02c7e14af7), "1.0000000000000001e+23"),
            (f64::from_bits(0x3eb0c6f7a0b5ed8d), "0.000001"),
            (f64::from_bits(0x3e7ad7f29abcaf48), "1e-7"),
            (f64::from_bits(0x4024000000000000), "10"),
            (f64::from_bits(0x4430000000000000), "295147905179352830000"),
        ];
        for (n, want) in cases {
            let v = serde_json::json!([n]);
            assert_eq!(canonical_json(&v), format!("[{want}]"), "bits {:#x}", n.to_bits());
        }
    }
}
