using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace RollingReboot.CloudStack;

/// <summary>
/// Signs CloudStack API requests the way the management server verifies them (ApiServer.verifyRequest):
/// names lowercased and sorted, values encoded with Java's URLEncoder (then <c>+</c> as <c>%20</c>), the
/// whole string lowercased, HMAC-SHA1 with the secret key, Base64.
/// </summary>
public sealed class CloudStackSigner
{
    private const string ExpiresFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'";

    // Java's String.getBytes(UTF_8) turns an unpaired surrogate into '?', so does this encoder.
    private static readonly Encoding s_javaUtf8 =
        Encoding.GetEncoding("utf-8", new EncoderReplacementFallback("?"), DecoderFallback.ReplacementFallback);

    private readonly string _secretKey;

    public CloudStackSigner(string apiKey, string secretKey)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(apiKey);
        ArgumentException.ThrowIfNullOrWhiteSpace(secretKey);
        ApiKey = apiKey;
        _secretKey = secretKey;
    }

    public string ApiKey { get; }

    /// <summary>
    /// The complete, signed query (or form body): every parameter plus <c>apikey</c>, sorted, encoded, and
    /// <c>signature</c> last. With <paramref name="expires"/>, signs as version 3 (<c>signatureversion=3</c>,
    /// <c>expires</c>).
    /// </summary>
    public string Sign(IEnumerable<KeyValuePair<string, string>> parameters, DateTimeOffset? expires = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var all = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in parameters)
        {
            Add(all, name, value);
        }

        Add(all, "apikey", ApiKey);
        if (expires is { } expiry)
        {
            Add(all, "signatureversion", "3");
            Add(all, "expires", FormatExpires(expiry));
        }

        var signature = ComputeSignature(BuildStringToSign(all), _secretKey);
        var query = new StringBuilder();
        foreach (var (name, value) in all)
        {
            query.Append(EncodeValue(name)).Append('=').Append(EncodeValue(value)).Append('&');
        }

        return query.Append("signature=").Append(EncodeValue(signature)).ToString();
    }

    /// <summary>The string CloudStack computes the HMAC over (already lowercased).</summary>
    public static string BuildStringToSign(IEnumerable<KeyValuePair<string, string>> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var sorted = parameters
            .Where(p => !string.Equals(p.Key, "signature", StringComparison.OrdinalIgnoreCase))
            .Select(p => new KeyValuePair<string, string>(p.Key.ToLowerInvariant(), p.Value))
            .OrderBy(p => p.Key, StringComparer.Ordinal);
        // The server signs the decoded name as is and only the value encoded.
        var joined = string.Join('&', sorted.Select(p => p.Key + "=" + EncodeValue(p.Value)));
        return joined.ToLowerInvariant();
    }

    public static string ComputeSignature(string stringToSign, string secretKey)
    {
        ArgumentNullException.ThrowIfNull(stringToSign);
        ArgumentNullException.ThrowIfNull(secretKey);
        var mac = HMACSHA1.HashData(Encoding.UTF8.GetBytes(secretKey), Encoding.UTF8.GetBytes(stringToSign));
        return Convert.ToBase64String(mac);
    }

    /// <summary>Java <c>URLEncoder.encode(value, UTF_8)</c> with <c>+</c> replaced by <c>%20</c>.</summary>
    public static string EncodeValue(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var bytes = s_javaUtf8.GetBytes(value);
        var encoded = new StringBuilder(bytes.Length * 3);
        foreach (var b in bytes)
        {
            if (IsJavaUnreserved(b))
            {
                encoded.Append((char)b);
            }
            else if (b == (byte)' ')
            {
                encoded.Append("%20");
            }
            else
            {
                encoded.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return encoded.ToString();
    }

    /// <summary>
    /// The <c>expires</c> value in the legacy form every CloudStack version parses
    /// (<c>yyyy-MM-dd'T'HH:mm:ss'Z'Z</c>, e.g. <c>2026-11-22T12:00:00Z+0000</c>).
    /// </summary>
    public static string FormatExpires(DateTimeOffset expires) =>
        expires.ToUniversalTime().ToString(ExpiresFormat, CultureInfo.InvariantCulture) + "+0000";

    public override string ToString() => $"CloudStackSigner(apikey {CloudStackCredentials.Abbreviate(ApiKey)}, secret key hidden)";

    private static bool IsJavaUnreserved(byte b) =>
        b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'0' and <= (byte)'9')
            or (byte)'.' or (byte)'-' or (byte)'*' or (byte)'_';

    private static void Add(SortedDictionary<string, string> all, string name, string value)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(value);
        // Lowercase names so our sort order is the server's (it sorts the names as sent).
        if (!all.TryAdd(name.ToLowerInvariant(), value))
        {
            throw new ArgumentException($"Parameter '{name}' is given twice.", nameof(name));
        }
    }
}
