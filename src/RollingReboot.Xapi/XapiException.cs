using RollingReboot.Core.Ports;

namespace RollingReboot.Xapi;

/// <summary>
/// Every failure the XenAPI client reports: XAPI's error code and parameters (JSON-RPC object or array
/// error, XML-RPC fault, HTTP error page, transport failure), so callers handle one type.
/// </summary>
public sealed class XapiException : PoolOperationException
{
    public XapiException(string code, IReadOnlyList<string> parameters, string? method = null, Exception? inner = null)
        : base(code, parameters, Describe(code, parameters, method), inner)
    {
        Method = method;
        Kind = KindOf(code);
    }

    /// <summary>
    /// Which XAPI errors the run may wait out. Codes from ocaml/xapi-consts/api_errors.ml (xapi-project/xen-api):
    /// SESSION_INVALID (the master restarted, log in again), HOST_STILL_BOOTING and HOST_IS_SLAVE (a toolstack starting,
    /// the master moved), HOST_OFFLINE (a member not live yet); OTHER_OPERATION_IN_PROGRESS and HA_*_IN_PROGRESS: the
    /// object is busy. Everything else is XAPI's considered answer.
    /// </summary>
    public static PoolErrorKind KindOf(string code) => code switch
    {
        TransportError => PoolErrorKind.Unreachable,
        "SESSION_INVALID" or "HOST_STILL_BOOTING" or "HOST_IS_SLAVE" or "HOST_OFFLINE" => PoolErrorKind.Transient,
        "OTHER_OPERATION_IN_PROGRESS" or "HA_ENABLE_IN_PROGRESS" or "HA_DISABLE_IN_PROGRESS" => PoolErrorKind.Busy,
        _ => PoolErrorKind.Refused,
    };

    public XapiException() : this("INTERNAL_ERROR", []) { }

    public XapiException(string message) : this("INTERNAL_ERROR", [message]) { }

    public XapiException(string message, Exception inner) : this("INTERNAL_ERROR", [message], null, inner) { }

    public string? Method { get; }

    // Codes the client itself raises when XAPI could not say anything.
    public const string TransportError = "ROLLREBOOT_TRANSPORT_ERROR";
    public const string ProtocolError = "ROLLREBOOT_PROTOCOL_ERROR";
    public const string CertificateRejected = "ROLLREBOOT_CERTIFICATE_REJECTED";

    public static XapiException Unreachable(string detail, string? method, Exception? inner) =>
        new(TransportError, [detail], method, inner) { IsUnreachable = true };

    private static string Describe(string code, IReadOnlyList<string> parameters, string? method)
    {
        var p = parameters.Count == 0 ? "" : " [" + string.Join(", ", parameters) + "]";
        return method is null ? $"XenAPI error {code}{p}" : $"XenAPI error {code}{p} from {method}";
    }
}
