import Foundation

/// A 3×3 homogeneous 2-D transform in double precision (row-major), as stylegan2-ada's matrix helpers.
public struct Affine2D: Equatable {
    public var m: [Double]

    public static let identity = Affine2D(m: [1, 0, 0, 0, 1, 0, 0, 0, 1])

    public static func translate(_ tx: Double, _ ty: Double) -> Affine2D { Affine2D(m: [1, 0, tx, 0, 1, ty, 0, 0, 1]) }
    public static func scale(_ sx: Double, _ sy: Double) -> Affine2D { Affine2D(m: [sx, 0, 0, 0, sy, 0, 0, 0, 1]) }
    public static func rotate(_ theta: Double) -> Affine2D {
        Affine2D(m: [cos(theta), -sin(theta), 0, sin(theta), cos(theta), 0, 0, 0, 1])
    }

    public static func * (a: Affine2D, b: Affine2D) -> Affine2D {
        var r = [Double](repeating: 0, count: 9)
        for i in 0..<3 { for j in 0..<3 { for k in 0..<3 { r[3 * i + j] += a.m[3 * i + k] * b.m[3 * k + j] } } }
        return Affine2D(m: r)
    }

    /// The image of point (x, y).
    public func apply(_ x: Double, _ y: Double) -> (Double, Double) {
        (m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5])
    }

    public var isIdentity: Bool { self == .identity }
}
