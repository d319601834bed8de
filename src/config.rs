//! Kernel configuration (placeholder).
