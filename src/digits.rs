//! Decimal digits of a number, without `core::fmt`: for the configuration writer and the
//! tags of workers' stderr lines, which must not pull formatting machinery into small
//! images or into code the kernel calls.

/// The decimal digits of `n`, written at the end of `buf`.
pub(crate) fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn digits_of_the_extremes_and_between() {
        let mut buf = [0; 20];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(decimal(7, &mut buf), b"7");
        assert_eq!(decimal(1_234_567_890, &mut buf), b"1234567890");
        assert_eq!(decimal(u64::MAX, &mut buf), b"18446744073709551615");
    }
}
