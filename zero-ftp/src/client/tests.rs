//! The client machine on a simulated clock, against scripted server replies.
