package wire

import "github.com/vmihailenco/msgpack/v5"

// Codecs of the hot headers; see hotcodec.go for the rules they follow.

// EncodeMsgpack implements msgpack.CustomEncoder.
func (m ProduceRequest) EncodeMsgpack(e *msgpack.Encoder) error {
	return firstErr(e.EncodeArrayLen(4), e.EncodeString(m.Topic), e.EncodeInt32(m.Partition),
		e.EncodeInt8(m.Acks), e.EncodeInt32(m.TimeoutMs))
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (m *ProduceRequest) DecodeMsgpack(d *msgpack.Decoder) error {
	return firstErr(decArray(d, 4), decString(d, &m.Topic), decInt32(d, &m.Partition),
		decInt8(d, &m.Acks), decInt32(d, &m.TimeoutMs))
}

func (m ProduceRequest) appendMsgpack(b []byte) []byte {
	b = mpString(mpArray(b, 4), m.Topic)
	return mpInt32(mpInt8(mpInt32(b, m.Partition), m.Acks), m.TimeoutMs)
}

func (m *ProduceRequest) parseMsgpack(b []byte) error {
	r := mpReader{b}
	return firstErr(r.arrayLen(4), r.string(&m.Topic), r.int32(&m.Partition), r.int8(&m.Acks),
		r.int32(&m.TimeoutMs), r.end())
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (m ProduceResponse) EncodeMsgpack(e *msgpack.Encoder) error {
	return firstErr(e.EncodeArrayLen(4), e.EncodeUint16(uint16(m.Error)), e.EncodeString(m.Message),
		e.EncodeInt64(m.BaseOffset), e.EncodeInt64(m.LastOffset))
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (m *ProduceResponse) DecodeMsgpack(d *msgpack.Decoder) error {
	return firstErr(decArray(d, 4), decCode(d, &m.Error), decString(d, &m.Message),
		decInt64(d, &m.BaseOffset), decInt64(d, &m.LastOffset))
}

func (m ProduceResponse) appendMsgpack(b []byte) []byte {
	b = mpString(mpUint16(mpArray(b, 4), uint16(m.Error)), m.Message)
	return mpInt64(mpInt64(b, m.BaseOffset), m.LastOffset)
}

func (m *ProduceResponse) parseMsgpack(b []byte) error {
	r := mpReader{b}
	return firstErr(r.arrayLen(4), r.code16(&m.Error), r.string(&m.Message), r.int64(&m.BaseOffset),
		r.int64(&m.LastOffset), r.end())
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (m FetchRequest) EncodeMsgpack(e *msgpack.Encoder) error {
	return firstErr(e.EncodeArrayLen(6), e.EncodeString(m.Topic), e.EncodeInt32(m.Partition),
		e.EncodeInt64(m.Offset), e.EncodeInt32(m.MaxBytes), e.EncodeInt32(m.MinBytes), e.EncodeInt32(m.MaxWaitMs))
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (m *FetchRequest) DecodeMsgpack(d *msgpack.Decoder) error {
	return firstErr(decArray(d, 6), decString(d, &m.Topic), decInt32(d, &m.Partition),
		decInt64(d, &m.Offset), decInt32(d, &m.MaxBytes), decInt32(d, &m.MinBytes), decInt32(d, &m.MaxWaitMs))
}

func (m FetchRequest) appendMsgpack(b []byte) []byte {
	b = mpInt64(mpInt32(mpString(mpArray(b, 6), m.Topic), m.Partition), m.Offset)
	return mpInt32(mpInt32(mpInt32(b, m.MaxBytes), m.MinBytes), m.MaxWaitMs)
}

func (m *FetchRequest) parseMsgpack(b []byte) error {
	r := mpReader{b}
	return firstErr(r.arrayLen(6), r.string(&m.Topic), r.int32(&m.Partition), r.int64(&m.Offset),
		r.int32(&m.MaxBytes), r.int32(&m.MinBytes), r.int32(&m.MaxWaitMs), r.end())
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (m FetchResponse) EncodeMsgpack(e *msgpack.Encoder) error {
	return firstErr(e.EncodeArrayLen(4), e.EncodeUint16(uint16(m.Error)), e.EncodeString(m.Message),
		e.EncodeInt64(m.HighWatermark), e.EncodeInt64(m.LogStartOffset))
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (m *FetchResponse) DecodeMsgpack(d *msgpack.Decoder) error {
	return firstErr(decArray(d, 4), decCode(d, &m.Error), decString(d, &m.Message),
		decInt64(d, &m.HighWatermark), decInt64(d, &m.LogStartOffset))
}

func (m FetchResponse) appendMsgpack(b []byte) []byte {
	b = mpString(mpUint16(mpArray(b, 4), uint16(m.Error)), m.Message)
	return mpInt64(mpInt64(b, m.HighWatermark), m.LogStartOffset)
}

func (m *FetchResponse) parseMsgpack(b []byte) error {
	r := mpReader{b}
	return firstErr(r.arrayLen(4), r.code16(&m.Error), r.string(&m.Message), r.int64(&m.HighWatermark),
		r.int64(&m.LogStartOffset), r.end())
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (m SubscribeData) EncodeMsgpack(e *msgpack.Encoder) error {
	return firstErr(e.EncodeArrayLen(5), e.EncodeString(m.Topic), e.EncodeInt32(m.Partition),
		e.EncodeUint16(uint16(m.Error)), e.EncodeString(m.Message), e.EncodeInt64(m.HighWatermark))
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (m *SubscribeData) DecodeMsgpack(d *msgpack.Decoder) error {
	return firstErr(decArray(d, 5), decString(d, &m.Topic), decInt32(d, &m.Partition),
		decCode(d, &m.Error), decString(d, &m.Message), decInt64(d, &m.HighWatermark))
}

func (m SubscribeData) appendMsgpack(b []byte) []byte {
	b = mpInt32(mpString(mpArray(b, 5), m.Topic), m.Partition)
	return mpInt64(mpString(mpUint16(b, uint16(m.Error)), m.Message), m.HighWatermark)
}

func (m *SubscribeData) parseMsgpack(b []byte) error {
	r := mpReader{b}
	return firstErr(r.arrayLen(5), r.string(&m.Topic), r.int32(&m.Partition), r.code16(&m.Error),
		r.string(&m.Message), r.int64(&m.HighWatermark), r.end())
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (m SubscribeCredit) EncodeMsgpack(e *msgpack.Encoder) error {
	return firstErr(e.EncodeArrayLen(1), e.EncodeInt64(m.Bytes))
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (m *SubscribeCredit) DecodeMsgpack(d *msgpack.Decoder) error {
	return firstErr(decArray(d, 1), decInt64(d, &m.Bytes))
}

func (m SubscribeCredit) appendMsgpack(b []byte) []byte { return mpInt64(mpArray(b, 1), m.Bytes) }

func (m *SubscribeCredit) parseMsgpack(b []byte) error {
	r := mpReader{b}
	return firstErr(r.arrayLen(1), r.int64(&m.Bytes), r.end())
}
