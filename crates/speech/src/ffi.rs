//! The few libpocketsphinx 5prealpha calls we make, opened at run time.
//!
//! Why our own FFI: the binding crates on the registry (`pocketsphinx`,
//! `pocketsphinx-sys`) have had no release since 2017 and link the library
//! at build time, which would make every build of the workspace need
//! `libpocketsphinx-dev`. We open Debian's `libpocketsphinx.so.3` with
//! `dlopen` (libloading) instead: the workspace builds anywhere, and a
//! machine without the library runs every dialplan without speech (a plan
//! that asks for speech is refused by `run` with the reason).
//!
//! The calls are the stable C API of pocketsphinx 5prealpha (Debian
//! bookworm's 0.8+5prealpha+1): `cmd_ln_parse_r`, `ps_init`,
//! `ps_set_jsgf_string`, `ps_set_kws`, `ps_set_search`, `ps_start_utt`, `ps_process_raw`,
//! `ps_end_utt`, `ps_get_hyp`, `ps_get_prob`,
//! `logmath_exp`, `ps_free`. `cmd_ln_parse_r`, `cmd_ln_free_r` and
//! `logmath_exp` live in libsphinxbase, which the
//! library depends on: `dlsym` on its handle finds them there.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_void};
use std::ptr::NonNull;
use std::sync::Arc;

use crate::error::SpeechError;

/// The shared object Debian's `libpocketsphinx3` installs.
pub(crate) const LIBRARY: &str = "libpocketsphinx.so.3";

type ArgsFn = unsafe extern "C" fn() -> *const c_void;
type ParseFn =
    unsafe extern "C" fn(*mut c_void, *const c_void, i32, *mut *mut c_char, i32) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void) -> i32;
type InitFn = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
type SetJsgfFn = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char) -> i32;
type SetSearchFn = unsafe extern "C" fn(*mut c_void, *const c_char) -> i32;
type UttFn = unsafe extern "C" fn(*mut c_void) -> i32;
type ProcessFn = unsafe extern "C" fn(*mut c_void, *const i16, usize, i32, i32) -> i32;
type ProbFn = unsafe extern "C" fn(*mut c_void) -> i32;
type LogmathFn = unsafe extern "C" fn(*mut c_void) -> *mut c_void;
type ExpFn = unsafe extern "C" fn(*mut c_void, i32) -> f64;
type SetKwsFn = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char) -> i32;
type HypFn = unsafe extern "C" fn(*mut c_void, *mut i32) -> *const c_char;

/// The library and its functions. The function pointers stay valid while
/// `_library` is loaded, and it is kept as long as this value.
pub(crate) struct Api {
    _library: libloading::Library,
    ps_args: ArgsFn,
    cmd_ln_parse_r: ParseFn,
    cmd_ln_free_r: FreeFn,
    ps_init: InitFn,
    ps_free: FreeFn,
    ps_set_jsgf_string: SetJsgfFn,
    ps_set_search: SetSearchFn,
    ps_set_kws: SetKwsFn,
    ps_get_prob: ProbFn,
    ps_get_logmath: LogmathFn,
    logmath_exp: ExpFn,
    ps_start_utt: UttFn,
    ps_process_raw: ProcessFn,
    ps_end_utt: UttFn,
    ps_get_hyp: HypFn,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Api(libpocketsphinx)")
    }
}

impl Api {
    /// Opens the library and looks up every function.
    pub(crate) fn open() -> Result<Arc<Api>, SpeechError> {
        let unavailable = |error: libloading::Error| SpeechError::Library {
            library: LIBRARY,
            reason: error.to_string(),
        };
        // SAFETY: loading libpocketsphinx runs its (and libsphinxbase's)
        // initialisers, which only set up static tables.
        let library = unsafe { libloading::Library::new(LIBRARY) }.map_err(unavailable)?;
        // SAFETY: each type above is the C prototype of the symbol named,
        // as pocketsphinx.h, ps_search.h, cmd_ln.h and logmath.h of
        // 5prealpha declare it (`int32` is i32, `size_t` is usize).
        unsafe {
            macro_rules! symbol {
                ($name:literal) => {
                    *library.get($name).map_err(unavailable)?
                };
            }
            let api = Api {
                ps_args: symbol!(b"ps_args\0"),
                cmd_ln_parse_r: symbol!(b"cmd_ln_parse_r\0"),
                cmd_ln_free_r: symbol!(b"cmd_ln_free_r\0"),
                ps_init: symbol!(b"ps_init\0"),
                ps_free: symbol!(b"ps_free\0"),
                ps_set_jsgf_string: symbol!(b"ps_set_jsgf_string\0"),
                ps_set_search: symbol!(b"ps_set_search\0"),
                ps_set_kws: symbol!(b"ps_set_kws\0"),
                ps_get_prob: symbol!(b"ps_get_prob\0"),
                ps_get_logmath: symbol!(b"ps_get_logmath\0"),
                logmath_exp: symbol!(b"logmath_exp\0"),
                ps_start_utt: symbol!(b"ps_start_utt\0"),
                ps_process_raw: symbol!(b"ps_process_raw\0"),
                ps_end_utt: symbol!(b"ps_end_utt\0"),
                ps_get_hyp: symbol!(b"ps_get_hyp\0"),
                _library: library,
            };
            Ok(Arc::new(api))
        }
    }
}

/// What one utterance decoded to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decoded {
    pub(crate) text: String,
    pub(crate) posterior: f64,
}

/// One `ps_decoder_t`. Not `Send`: each worker thread makes its own and
/// keeps it (the decoder has no locking of its own).
pub(crate) struct RawDecoder {
    api: Arc<Api>,
    decoder: NonNull<c_void>,
}

impl RawDecoder {
    /// `ps_init` with these command-line style arguments (`-hmm DIR` …).
    pub(crate) fn new(
        api: Arc<Api>,
        arguments: &[(&str, &str)],
    ) -> Result<RawDecoder, SpeechError> {
        let mut owned = Vec::with_capacity(arguments.len() * 2);
        for (key, value) in arguments {
            owned.push(CString::new(*key).map_err(|_| SpeechError::Argument)?);
            owned.push(CString::new(*value).map_err(|_| SpeechError::Argument)?);
        }
        let mut argv: Vec<*mut c_char> = owned.iter().map(|s| s.as_ptr().cast_mut()).collect();
        let argc = i32::try_from(argv.len()).map_err(|_| SpeechError::Argument)?;
        // SAFETY: argv holds argc valid C strings that outlive the call
        // (cmd_ln_parse_r copies what it keeps); ps_args() is the static
        // table of the decoder's options; strict = 1 refuses unknown ones.
        let config = unsafe {
            (api.cmd_ln_parse_r)(
                std::ptr::null_mut(),
                (api.ps_args)(),
                argc,
                argv.as_mut_ptr(),
                1,
            )
        };
        if config.is_null() {
            return Err(SpeechError::Model(
                "the decoder refused its configuration".into(),
            ));
        }
        // SAFETY: config is a valid cmd_ln_t; ps_init takes its own
        // reference (cmd_ln_retain), so ours is released right after.
        let decoder = unsafe { (api.ps_init)(config) };
        // SAFETY: our reference from cmd_ln_parse_r, released once.
        unsafe { (api.cmd_ln_free_r)(config) };
        let decoder = NonNull::new(decoder)
            .ok_or_else(|| SpeechError::Model("the decoder could not load the model".into()))?;
        Ok(RawDecoder { api, decoder })
    }

    /// Adds (or replaces) a JSGF grammar search named `name`.
    pub(crate) fn set_jsgf(&mut self, name: &str, jsgf: &str) -> Result<(), SpeechError> {
        let name = CString::new(name).map_err(|_| SpeechError::Argument)?;
        let jsgf = CString::new(jsgf).map_err(|_| SpeechError::Argument)?;
        // SAFETY: a live decoder and two valid C strings the call copies.
        let status = unsafe {
            (self.api.ps_set_jsgf_string)(self.decoder.as_ptr(), name.as_ptr(), jsgf.as_ptr())
        };
        if status < 0 {
            return Err(SpeechError::Grammar);
        }
        Ok(())
    }

    /// Adds (or replaces) a keyword-spotting search named `name` whose
    /// keyphrases and thresholds are in the file `path` (`phrase /1e-20/`
    /// a line).
    pub(crate) fn set_kws(&mut self, name: &str, path: &str) -> Result<(), SpeechError> {
        let name = CString::new(name).map_err(|_| SpeechError::Argument)?;
        let path = CString::new(path).map_err(|_| SpeechError::Argument)?;
        // SAFETY: a live decoder and two valid C strings; the call reads
        // the file before it returns.
        let status =
            unsafe { (self.api.ps_set_kws)(self.decoder.as_ptr(), name.as_ptr(), path.as_ptr()) };
        if status < 0 {
            return Err(SpeechError::Grammar);
        }
        Ok(())
    }

    /// Makes the search named `name` the active one.
    pub(crate) fn set_search(&mut self, name: &str) -> Result<(), SpeechError> {
        let name = CString::new(name).map_err(|_| SpeechError::Argument)?;
        // SAFETY: a live decoder and a valid C string.
        let status = unsafe { (self.api.ps_set_search)(self.decoder.as_ptr(), name.as_ptr()) };
        if status < 0 {
            return Err(SpeechError::Grammar);
        }
        Ok(())
    }

    /// Decodes one whole utterance with the active search: the best
    /// hypothesis (empty when nothing was recognised) and its posterior
    /// probability.
    pub(crate) fn decode(&mut self, samples: &[i16]) -> Result<Decoded, SpeechError> {
        let decoder = self.decoder.as_ptr();
        // SAFETY: a live decoder; `samples` is valid for its length for the
        // duration of ps_process_raw, which copies what it needs.
        unsafe {
            if (self.api.ps_start_utt)(decoder) < 0 {
                return Err(SpeechError::Decode);
            }
            if (self.api.ps_process_raw)(decoder, samples.as_ptr(), samples.len(), 0, 1) < 0 {
                (self.api.ps_end_utt)(decoder);
                return Err(SpeechError::Decode);
            }
            if (self.api.ps_end_utt)(decoder) < 0 {
                return Err(SpeechError::Decode);
            }
            let mut score = 0i32; // the path score; not used
            let hyp = (self.api.ps_get_hyp)(decoder, &mut score);
            let text = if hyp.is_null() {
                String::new()
            } else {
                // The decoder owns the string until the next utterance.
                CStr::from_ptr(hyp).to_string_lossy().into_owned()
            };
            // The posterior of the best path over the lattice (the
            // decoder's own confidence measure).
            let posterior = if text.is_empty() {
                0.0
            } else {
                let prob = (self.api.ps_get_prob)(decoder);
                let logmath = (self.api.ps_get_logmath)(decoder);
                if logmath.is_null() {
                    0.0
                } else {
                    (self.api.logmath_exp)(logmath, prob)
                }
            };
            Ok(Decoded {
                text,
                posterior: posterior.clamp(0.0, 1.0),
            })
        }
    }
}

impl Drop for RawDecoder {
    fn drop(&mut self) {
        // SAFETY: our one reference to a live decoder, released once.
        unsafe { (self.api.ps_free)(self.decoder.as_ptr()) };
    }
}
