//! Conversion tables for the Events decoded from protobuf: events.k8s.io/v1 Event (what
//! client-go's event broadcaster posts) and core/v1 Event (the legacy recorder). See `conv.rs`
//! for the table syntax.

use super::conv::{Conv, convert, omit_zero, option_impls};
use k8s_openapi::api::core::v1 as oa_core;
use k8s_openapi::api::events::v1 as oa_events;
use k8s_pb::api::core::v1 as pb_core;
use k8s_pb::api::events::v1 as pb_events;

convert! { pb_events => oa_events;
    Event {
        deprecated_first_timestamp, deprecated_last_timestamp, deprecated_source, event_time,
        metadata, regarding, related, series; omit action, deprecated_count, note, reason,
        reporting_controller, reporting_instance, type_ = r#type
    }
    EventSeries { count, last_observed_time }
}

convert! { pb_core => oa_core;
    // Go prints reportingComponent and reportingInstance even when empty (no omitempty).
    Event {
        event_time, first_timestamp, involved_object, last_timestamp, metadata, related,
        reporting_component, reporting_instance, series, source; omit action, count, message,
        reason, type_ = r#type
    }
    EventSeries { last_observed_time; omit count }
    EventSource { ; omit component, host }
}
