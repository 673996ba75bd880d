//! The tag numbers the session layer and the codec name.

/// BeginString.
pub const BEGIN_STRING: u32 = 8;
/// BodyLength.
pub const BODY_LENGTH: u32 = 9;
/// CheckSum.
pub const CHECK_SUM: u32 = 10;
/// MsgType.
pub const MSG_TYPE: u32 = 35;
/// MsgSeqNum.
pub const MSG_SEQ_NUM: u32 = 34;
/// SenderCompID.
pub const SENDER_COMP_ID: u32 = 49;
/// TargetCompID.
pub const TARGET_COMP_ID: u32 = 56;
/// SendingTime.
pub const SENDING_TIME: u32 = 52;
/// PossDupFlag.
pub const POSS_DUP_FLAG: u32 = 43;
/// PossResend.
pub const POSS_RESEND: u32 = 97;
/// OrigSendingTime.
pub const ORIG_SENDING_TIME: u32 = 122;
/// SenderSubID.
pub const SENDER_SUB_ID: u32 = 50;
/// TargetSubID.
pub const TARGET_SUB_ID: u32 = 57;
/// OnBehalfOfCompID.
pub const ON_BEHALF_OF_COMP_ID: u32 = 115;
/// DeliverToCompID.
pub const DELIVER_TO_COMP_ID: u32 = 128;
/// ApplVerID (FIXT 1.1).
pub const APPL_VER_ID: u32 = 1128;
/// DefaultApplVerID (FIXT 1.1 Logon).
pub const DEFAULT_APPL_VER_ID: u32 = 1137;
/// BeginSeqNo (ResendRequest).
pub const BEGIN_SEQ_NO: u32 = 7;
/// EndSeqNo (ResendRequest).
pub const END_SEQ_NO: u32 = 16;
/// NewSeqNo (SequenceReset).
pub const NEW_SEQ_NO: u32 = 36;
/// GapFillFlag (SequenceReset).
pub const GAP_FILL_FLAG: u32 = 123;
/// RefSeqNum (Reject).
pub const REF_SEQ_NUM: u32 = 45;
/// Text.
pub const TEXT: u32 = 58;
/// EncryptMethod (Logon).
pub const ENCRYPT_METHOD: u32 = 98;
/// HeartBtInt (Logon).
pub const HEART_BT_INT: u32 = 108;
/// TestReqID.
pub const TEST_REQ_ID: u32 = 112;
/// ResetSeqNumFlag (Logon).
pub const RESET_SEQ_NUM_FLAG: u32 = 141;
/// RefTagID (Reject).
pub const REF_TAG_ID: u32 = 371;
/// RefMsgType (Reject, BusinessMessageReject).
pub const REF_MSG_TYPE: u32 = 372;
/// SessionRejectReason (Reject).
pub const SESSION_REJECT_REASON: u32 = 373;
/// BusinessRejectReason (BusinessMessageReject).
pub const BUSINESS_REJECT_REASON: u32 = 380;
/// NextExpectedMsgSeqNum (Logon).
pub const NEXT_EXPECTED_MSG_SEQ_NUM: u32 = 789;
