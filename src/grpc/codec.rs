//! The API's message codec: tonic-prost's, except that a request body that is not a valid
//! message is INVALID_ARGUMENT (reason `MALFORMED_REQUEST`), not the INTERNAL that tonic-prost
//! answers by the letter of the gRPC status guide. INTERNAL means a bug of ours here, and a
//! client's garbage must not page anyone (docs/operations.md, "Errors").

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstDecoder, ProstEncoder};

use super::error::plain;

/// The codec build.rs names for every generated service and client.
#[derive(Debug, Clone, Default)]
pub struct ApiCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Codec for ApiCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = StrictDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        StrictDecoder(ProstDecoder::new(BufferSettings::default()))
    }
}

/// tonic-prost's decoder with its parse errors made INVALID_ARGUMENT.
#[derive(Debug, Clone, Default)]
pub struct StrictDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for StrictDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|e| {
            plain(
                tonic::Code::InvalidArgument,
                format!("the message is not valid protobuf: {}", e.message()),
                "MALFORMED_REQUEST",
            )
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
