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
    }

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
